"""``ctrlbench train ALGO PLANT``: the run folder, settings and resume rules of a training run.

The algorithms themselves live with the controller families and register in
:data:`ctrlbench.registry.ALGORITHMS` (``"sac"``, ``"td3"``, ``"ppo"`` through Stable-Baselines3,
``"sindy-rl"``); an entry is a function ``trainer(run: TrainRun) -> dict`` with the algorithm's
own options dataclass. This module (light: no torch, no SB3) owns what every algorithm shares:

- :class:`TrainSettings` — steps, seed, evaluation and checkpoint periods, observation/reward
  normalization (wrappers around the plant, never inside it), TensorBoard, progress bar;
- the run folder: ``config.json`` (what was asked, written once), ``checkpoint/`` (the latest
  checkpoint, replaced atomically), ``eval.jsonl`` (one line per evaluation), ``model.zip`` (the
  final model), ``tb/`` (TensorBoard);
- :func:`train`: one writer per folder, a new run refuses a folder that holds one, and
  ``resume=True`` continues the folder's run only with the same configuration (the step count
  goes on from the checkpoint).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ctrlbench.options import Options, option

__all__ = ["NonFiniteLossError", "TrainRun", "TrainSettings", "is_gym_id", "load_eval_log",
           "train"]

CONFIG = "config.json"
CHECKPOINT = "checkpoint"
EVAL_LOG = "eval.jsonl"
MODEL = "model.zip"
#: Files whose presence means the folder holds a training run.
MARKERS = (CONFIG, CHECKPOINT, EVAL_LOG, MODEL)


class NonFiniteLossError(ValueError):
    """Training produced a non-finite loss; the last good checkpoint is kept."""


@dataclass(frozen=True)
class TrainSettings(Options):
    """What every training algorithm shares (``ctrlbench train --steps --seed --set ...``)."""

    label = "train"
    steps: int = option(20_000, "real environment steps to train for (in total, across resumes)",
                        ge=1, le=10**9)
    seed: int = option(0, "seed of the algorithm, the plant's resets and the evaluation", ge=0,
                       le=2**31 - 1)
    n_envs: int = option(1, "environments stepped together (a plant with a batched vector env "
                         "steps them in one pass; otherwise copies in SB3's DummyVecEnv)",
                         ge=1, le=65_536)
    eval_every: int = option(5_000, "environment steps between evaluations (0: only at the end)",
                             ge=0, le=10**9)
    eval_steps: int | None = option(None, "control steps of each evaluation episode "
                                    "(None: the plant's episode)", ge=1, le=10**7)
    checkpoint_every: int = option(5_000, "environment steps between checkpoints (model, replay "
                                   "buffer, normalization; 0: only at the end)", ge=0, le=10**9)
    normalize_obs: str = option("bounds", "observation scaling: 'bounds' maps each finite "
                                "observation box to [-1, 1]; 'running' keeps running mean/std "
                                "(SB3 VecNormalize); 'none'", choices=("bounds", "running", "none"))
    normalize_reward: bool = option(False, "scale rewards by a running return std (SB3 "
                                    "VecNormalize; training only)")
    tensorboard: bool = option(True, "write TensorBoard logs to <out>/tb")
    progress_bar: bool = option(False, "show a progress bar")


@dataclass(frozen=True)
class TrainRun:
    """One training request, as the algorithm's trainer receives it.

    Attributes
    ----------
    algorithm:
        Registered algorithm name.
    plant:
        Full plant id (``ctrlbench/<Name>-v<N>``) or another gymnasium id (e.g. ``Pendulum-v1``).
    out:
        The run folder (locked by :func:`train` while the trainer runs).
    settings:
        Shared settings.
    algorithm_options:
        The algorithm's validated options (its registered dataclass), or ``None``.
    plant_options:
        Options of the plant (``make_plant(plant, **plant_options)``).
    resume:
        Continue from the folder's checkpoint.
    """

    algorithm: str
    plant: str
    out: Path
    settings: TrainSettings
    algorithm_options: Options | None = None
    plant_options: Mapping[str, Any] = field(default_factory=dict)
    resume: bool = False

    def config(self) -> dict[str, Any]:
        """The JSON-able configuration saved in ``config.json`` (compared on resume)."""
        opts = self.algorithm_options
        return {"algorithm": self.algorithm, "plant": self.plant,
                "plant_options": dict(self.plant_options),
                "algorithm_options": opts.to_dict() if opts is not None else {},
                "settings": {k: v for k, v in self.settings.to_dict().items()
                             if k not in _RESUMABLE}}


#: Settings a resumed run may change (how long, how it is watched), not what it learns.
_RESUMABLE = ("steps", "eval_every", "checkpoint_every", "tensorboard", "progress_bar")


def _same(a: Any, b: Any) -> bool:
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def train(algorithm: str, plant: str, out: str | os.PathLike[str], *,
          settings: TrainSettings | Mapping[str, Any] | None = None,
          algorithm_options: Mapping[str, Any] | Options | None = None,
          plant_options: Mapping[str, Any] | None = None, resume: bool = False,
          overwrite: bool = False) -> dict[str, Any]:
    """Train ``algorithm`` on ``plant`` into the run folder ``out``; returns the trainer's summary.

    Raises
    ------
    KeyError
        Unknown algorithm or plant (lists the valid names).
    OptionError
        A bad setting or algorithm option (names the field, the value and the valid range).
    RunFolderError
        The folder holds another run (without ``resume`` / ``overwrite``), is locked by another
        writer, or ``resume`` finds no run or a different configuration.
    """
    from ctrlbench.io import atomic_write_bytes
    from ctrlbench.registry import ALGORITHMS, plant_info
    from ctrlbench.runfolder import RunFolderError, claim_folder, lock_folder

    ALGORITHMS.entry(algorithm)  # an unknown name first, listing the valid ones
    full = plant_info(plant)[0] if not is_gym_id(plant) else plant
    s = settings if isinstance(settings, TrainSettings) else TrainSettings.build(
        settings or {}, what="train settings")
    opts = ALGORITHMS.build_options(algorithm, algorithm_options)
    run = TrainRun(algorithm, full, Path(out).resolve(), s, opts, dict(plant_options or {}),
                   resume)
    run.out.mkdir(parents=True, exist_ok=True)
    with lock_folder(run.out, "training run"):
        claim_folder(run.out, resume=resume, overwrite=overwrite, markers=MARKERS)
        path = run.out / CONFIG
        if resume:
            if not path.exists():
                raise RunFolderError(f"nothing to resume in {str(run.out)!r}: no {CONFIG}; "
                                     f"start the run without --resume")
            try:
                saved = json.loads(path.read_text())
            except ValueError as exc:
                raise RunFolderError(f"{path}: not valid JSON ({exc}); the run cannot be "
                                     f"resumed") from None
            if not _same(saved, run.config()):
                diff = sorted(k for k in set(saved) | set(run.config())
                              if not _same(saved.get(k), run.config().get(k)))
                raise RunFolderError(f"the configuration differs from the run in "
                                     f"{str(run.out)!r} (in {', '.join(diff)}); resume it with "
                                     f"the same options or use another folder")
        else:
            atomic_write_bytes(path, json.dumps(run.config(), indent=1).encode())
        trainer = ALGORITHMS.load(algorithm)
        try:
            result: dict[str, Any] = trainer(run)
        except BaseException:
            if not resume and not any((run.out / m).exists() for m in MARKERS if m != CONFIG):
                path.unlink(missing_ok=True)  # nothing was trained: the folder stays free
            raise
        return result


def is_gym_id(plant: str) -> bool:
    """A gymnasium id that is not a ctrlbench plant (``Pendulum-v1``): trained on as it is."""
    if plant.startswith("ctrlbench/"):
        return False
    from ctrlbench.registry import PLANTS

    if f"ctrlbench/{plant}" in PLANTS:
        return False
    import gymnasium as gym

    return plant in gym.registry


def load_eval_log(out: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The evaluations of the run in ``out`` (a damaged last line, from a kill, is skipped)."""
    path = Path(out) / EVAL_LOG
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows
