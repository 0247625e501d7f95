"""What the llm_rl study scripts share: one training run per (task, method), reused when done.

A finished run leaves ``summary.json`` in its ``out_dir``, stamped with the
:func:`~llm_rl.config.config_hash` of its :class:`~llm_rl.config.TrainConfig`; a rerun returns
that summary only for the same config, resumes a run killed after a checkpoint, and otherwise
trains from scratch. Results of the whole study go to ``results.md`` / ``results.json`` with
their provenance, written atomically.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ctrlbench.io import atomic_write_bytes
from ctrlbench.options import parse_bool
from ctrlbench.provenance import format_provenance, provenance
from llm_rl.config import TrainConfig, config_hash

__all__ = ["parse_study_args", "train_or_reuse", "write_results"]

A = TypeVar("A")


def parse_study_args(cls: type[A], description: str, argv: list[str] | None = None,
                     smoke: Mapping[str, Any] | None = None) -> A:
    """A study script's flags, generated from its options dataclass ``cls``.

    One ``--name`` per field, its help the field's doc and default; booleans take true/false
    and a bare ``--flag`` means true. When the parsed ``smoke`` field is true, the ``smoke``
    sizes replace every field the command line did not set. Bad values raise the options
    class's own error (which names the field, the value and the valid range).
    """
    parser = argparse.ArgumentParser(description=description)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp = hints[f.name]
        text = f"{f.metadata.get('doc', '')} (default: {f.default})".replace("%", "%%")
        if tp is bool:
            parser.add_argument(f"--{f.name}", nargs="?", const=True, type=parse_bool,
                                default=None, help=text)
        else:
            parser.add_argument(f"--{f.name}", type=tp, default=None, help=text)
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v is not None}
    args = cls(**given)
    if smoke and getattr(args, "smoke", False):
        args = dataclasses.replace(args, **{k: v for k, v in smoke.items()  # type: ignore
                                            if k not in given})
    return args


def train_or_reuse(cfg: TrainConfig, summarize: Callable[[list[dict[str, Any]]], dict[str, Any]],
                   **fields: Any) -> dict[str, Any]:
    """Train ``cfg`` (resuming if interrupted) unless its summary, for this exact config, exists.

    The summary is ``fields`` (e.g. task and method), the config hash, ``summarize(history)`` and
    the run's ``wall_s``. A checkpoint under another config resumes only where the trainer allows
    it (more ``steps``), else a ``ValueError`` says which folder holds the other run.
    """
    from llm_rl.trainer import GRPOTrainer

    out = Path(cfg.out_dir)
    done = out / "summary.json"
    digest = config_hash(cfg)
    if done.is_file():
        summary = json.loads(done.read_text())
        if summary.get("config_hash") == digest:
            return dict(summary)
        # Another config's record (e.g. --smoke numbers): never report it for this run.
    t0 = time.perf_counter()
    try:
        resume = (out / "checkpoint.pt").is_file()  # a run killed before its first checkpoint
        trainer = GRPOTrainer(cfg, resume=resume, overwrite=not resume)  # restarts from scratch
    except ValueError as exc:
        if "config differs" not in str(exc):
            raise
        raise ValueError(
            f"{out} holds a run with another config ({exc}); pass a different --out_dir or "
            f"delete that directory"
        ) from exc
    trainer.train()
    summary = {**fields, "config_hash": digest, **summarize(trainer.history),
               "wall_s": time.perf_counter() - t0}
    atomic_write_bytes(done, json.dumps(summary).encode())
    return summary


def write_results(out_dir: str | Path, args: dict[str, Any], rows: list[dict[str, Any]],
                  report: str) -> str:
    """Write ``results.md`` (the report plus provenance) and ``results.json``; return the text."""
    prov = provenance()
    text = report + "\n" + format_provenance(prov)
    atomic_write_bytes(Path(out_dir) / "results.md", text.encode())
    atomic_write_bytes(Path(out_dir) / "results.json", json.dumps(
        {"args": args, "rows": rows, "provenance": prov}, indent=1, default=float).encode())
    return text
