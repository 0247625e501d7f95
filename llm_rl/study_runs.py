"""What the llm_rl study scripts share: one training run per (task, method), reused when done.

A finished run leaves ``summary.json`` in its ``out_dir``, stamped with the
:func:`~llm_rl.config.config_hash` of its :class:`~llm_rl.config.TrainConfig`; a rerun returns
that summary only for the same config, resumes a run killed after a checkpoint, and otherwise
trains from scratch. Results of the whole study go to ``results.md`` / ``results.json`` with
their provenance, written atomically.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ctrlbench.io import atomic_write_bytes
from ctrlbench.provenance import format_provenance, provenance
from llm_rl.config import TrainConfig, config_hash

__all__ = ["train_or_reuse", "write_results"]


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
