"""Optuna storage for ``ctrlbench tune``: open (or create) a study with a clear error for a bad
URL, and describe a URL without its password.

Storage URLs are SQLAlchemy URLs, as Optuna's ``RDBStorage`` takes them:

- ``sqlite:///results/tune/pmsm/optuna.db`` (the default, one machine);
- ``postgresql+psycopg2://user:password@db-host:5432/optuna`` (many machines; needs
  ``pip install psycopg2-binary``); ``mysql+pymysql://user:password@host/optuna`` likewise.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ctrlbench.tune import TuneSpec

__all__ = ["STORAGE_EXAMPLES", "open_study", "public_url"]

STORAGE_EXAMPLES = ("sqlite:///path/to/optuna.db",
                    "postgresql+psycopg2://user:password@host:5432/dbname",
                    "mysql+pymysql://user:password@host/dbname")
"""Storage URLs of the kinds Optuna's RDB storage takes."""
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def public_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and files)."""
    return re.sub(r"(://[^:/@]+:)[^@/]*@", r"\1***@", url)


def _bad(url: str, why: str) -> ValueError:
    return ValueError(f"cannot use Optuna storage {public_url(url)!r}: {why}; valid storage "
                      f"URLs look like {', '.join(repr(e) for e in STORAGE_EXAMPLES)}")


def _storage(url: str) -> Any:
    import optuna

    if not isinstance(url, str) or not _SCHEME.match(url):
        raise _bad(str(url), "not a database URL (no scheme://)")
    try:
        return optuna.storages.RDBStorage(url)
    except ImportError as exc:  # the database driver is not installed
        raise _bad(url, f"its database driver is not installed ({exc})") from None
    except Exception as exc:  # SQLAlchemy: unknown dialect, unreachable host, bad path, ...
        text = " ".join(str(exc).split())[:300]
        raise _bad(url, f"{type(exc).__name__}: {text}") from None


def open_study(spec: TuneSpec, url: str, name: str) -> Any:
    """The Optuna study ``name`` in storage ``url``, created if new (``load_if_exists``).

    Its sampler is ``spec.sampler`` seeded with ``spec.sampler_seed`` (TPE with the constant
    liar, so parallel trials spread out), its pruner ``spec.pruner``. A study that exists with
    the other direction raises ``ValueError``. The sampler's seed is ``sampler_seed`` plus the
    number of trials the study holds, so a resumed study does not repeat the first samples.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url.startswith("sqlite:///"):
        from pathlib import Path

        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    storage = _storage(url)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=5) if spec.pruner == "median"
              else optuna.pruners.NopPruner())
    study = optuna.create_study(storage=storage, study_name=name, pruner=pruner,
                                direction=spec.direction,  # type: ignore[arg-type]
                                load_if_exists=True)
    if study.direction.name.lower() != spec.direction:
        raise ValueError(f"Optuna study {name!r} in {public_url(url)!r} exists and "
                         f"{study.direction.name.lower()}s; this tuning {spec.direction}s: "
                         f"choose another --study-name")
    seed = spec.sampler_seed + len(study.get_trials(deepcopy=False))
    study.sampler = (optuna.samplers.TPESampler(seed=seed, constant_liar=True)
                     if spec.sampler == "tpe" else optuna.samplers.RandomSampler(seed=seed))
    return study
