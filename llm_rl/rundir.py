"""The run folder of ``llm train``: one run per folder, one writer, damaged files set aside.

A run folder holds ``config.json``, ``metrics.jsonl`` (one line per step), ``checkpoint.pt``,
``tensorboard/`` and, when finished, ``policy/``. The rules (built on
:mod:`ctrlbench.runfolder`):

- a new run starts only in a folder that holds no run; ``overwrite`` first moves the old run
  aside to ``<folder>.old-<time>`` (:func:`claim_run`);
- ``resume`` needs ``checkpoint.pt``;
- a checkpoint or log that is damaged or foreign is moved to ``<folder>/quarantine/`` with a
  note, and the error names the file, where it went and what to do (:func:`read_checkpoint`,
  :func:`read_metrics`); nothing damaged is ever used.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from ctrlbench.runfolder import LOCK_NAME, QUARANTINE, RunFolderError, claim_folder, quarantine
from llm_rl.checkpoint import CheckpointError, load_checkpoint

__all__ = [
    "CHECKPOINT_KEYS",
    "RUN_FILES",
    "DamagedFileError",
    "RunNote",
    "claim_run",
    "note",
    "quarantine_damaged",
    "read_checkpoint",
    "read_metrics",
]

#: What a run writes into its folder; any of them present means the folder holds a run.
RUN_FILES = ("config.json", "metrics.jsonl", "checkpoint.pt", "tensorboard", "policy")
#: Keys of a checkpoint written by :meth:`llm_rl.trainer.GRPOTrainer.save`.
CHECKPOINT_KEYS = frozenset({"step", "config", "model", "optimizer", "controller", "rng",
                             "eval_points", "last_eval"})


class DamagedFileError(RunFolderError):
    """A file of the run was damaged or foreign; it was moved to the folder's quarantine."""


class RunNote(UserWarning):
    """Something the user should know about a run folder that is not an error (an old run
    moved aside, a damaged cache entry rebuilt, a log that restarts); ``ctrlbench llm``
    prints these as ``note:`` lines."""


def note(message: str) -> None:
    """Issue a :class:`RunNote`."""
    warnings.warn(RunNote(message), stacklevel=3)


def _own(name: str) -> bool:
    """Files a run (or its atomic writes, or the lock) leaves in its folder."""
    return (name in RUN_FILES or name in (LOCK_NAME, QUARANTINE)
            or (name.startswith(".") and name.endswith(".tmp")))


def claim_run(folder: Path, *, resume: bool, overwrite: bool) -> Path | None:
    """Check ``folder`` can take the run asked for; call it while holding the folder's lock.

    Returns where ``overwrite`` moved the old run, if it moved one.

    Raises
    ------
    RunFolderError
        ``resume`` without a checkpoint; a new run in a folder holding one without
        ``overwrite``; ``overwrite`` of a folder that also holds files no run wrote (they are
        not moved: the folder is not a run folder).
    """
    ckpt = folder / "checkpoint.pt"
    if resume and not overwrite and ckpt.exists() and not ckpt.is_file():
        raise RunFolderError(f"cannot resume {str(folder)!r}: its checkpoint.pt is not a file")
    if resume and not overwrite and not ckpt.is_file():
        held = [n for n in RUN_FILES if (folder / n).exists()]
        if held:
            raise RunFolderError(
                f"cannot resume {str(folder)!r}: it has no checkpoint.pt (the run stopped before "
                f"its first checkpoint); start it again with --overwrite (the old files are "
                f"moved aside)")
        raise RunFolderError(f"cannot resume {str(folder)!r}: it holds no run (no "
                             f"checkpoint.pt); drop --resume to start one")
    if overwrite and folder.is_dir():
        names = sorted(p.name for p in folder.iterdir())
        foreign = [n for n in names if not _own(n)]
        if foreign and any(n in RUN_FILES for n in names):
            raise RunFolderError(
                f"--overwrite would move {str(folder)!r} aside, but it also holds files that "
                f"no run wrote ({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); "
                f"move them out first or choose another folder")
    return claim_folder(folder, resume=resume, overwrite=overwrite, markers=RUN_FILES)


def quarantine_damaged(path: Path, root: Path, why: str, todo: str) -> DamagedFileError:
    """Move ``path`` to ``<root>/quarantine/`` and return the error that says so (to raise)."""
    dest = quarantine(path, root, why)
    return DamagedFileError(f"{path} {why}; it was moved to {dest} (the reason is in "
                            f"{dest.name}.why.txt). {todo}")


def read_checkpoint(path: Path, root: Path) -> dict[str, Any]:
    """The checkpoint at ``path``, its keys checked; a damaged or foreign one is quarantined.

    Raises :class:`DamagedFileError` naming the file, where it went and what to do.
    """
    todo = ("The run cannot continue from it: put back a good checkpoint.pt and pass --resume "
            "again, or start a new run with --overwrite (the old one is moved aside).")
    try:
        state = load_checkpoint(path)
    except CheckpointError as exc:
        why = str(exc).removeprefix(str(path)).strip()
        raise quarantine_damaged(path, root, why, todo) from None
    missing = sorted(CHECKPOINT_KEYS - set(state))
    if missing:
        raise quarantine_damaged(
            path, root, f"is not a checkpoint of llm train (no {', '.join(missing)})", todo)
    step = state["step"]
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise quarantine_damaged(path, root, f"has an invalid step {step!r}", todo)
    return state


def read_metrics(path: Path, root: Path, step: int) -> tuple[list[dict[str, Any]], str | None]:
    """The logged rows of steps ``< step`` (a checkpoint's step), and a note for the user.

    A run appends one line per step, so a kill can leave a torn last line (no newline) and rows
    of steps after the checkpoint, which are redone; both are dropped. The kept rows must be
    consecutive steps ending at ``step - 1``; a log that starts later (earlier rows set aside,
    or the file removed) is accepted with a note. Anything else (a garbage or non-record line,
    a gap, rows missing at the end) is damage: the file is quarantined and
    :class:`DamagedFileError` says so.
    """
    if not path.is_file():
        return [], (f"{path.name} is missing: the log restarts at step {step}" if step else None)
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    lines.pop()  # "" after the last newline, or a torn last line: dropped either way
    todo = (f"The checkpoint (step {step}) is intact: pass --resume again to continue; the new "
            f"log starts at step {step} and the old rows stay in the quarantined file.")
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        ok = isinstance(row, dict) and isinstance(row.get("step"), int) \
            and not isinstance(row["step"], bool)
        if not ok:
            raise quarantine_damaged(path, root, f"line {number} is not a metrics row "
                                     f"({line[:40]!r})", todo)
        assert row is not None
        if rows and row["step"] != rows[-1]["step"] + 1:
            raise quarantine_damaged(
                path, root, f"line {number} logs step {row['step']} after step "
                f"{rows[-1]['step']}", todo)
        rows.append(row)
    kept = [r for r in rows if r["step"] < step]
    if step and (not kept or kept[-1]["step"] != step - 1):
        if rows and rows[-1]["step"] < step - 1:
            raise quarantine_damaged(
                path, root, f"ends at step {rows[-1]['step']} but the checkpoint is at step "
                f"{step}: rows are missing", todo)
        return [], f"{path.name} has no rows before step {step}: the log restarts there"
    note = None
    if kept and kept[0]["step"] > 0:
        note = (f"{path.name} starts at step {kept[0]['step']}: rows of earlier steps are not "
                f"in it (see {QUARANTINE}/ if they were set aside)")
    return kept, note
