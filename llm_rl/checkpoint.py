"""Atomic checkpoints and the RNG states that make a resume exact.

Checkpoints are read with ``torch.load(weights_only=True)`` (tensors, numbers, strings and the
numpy RNG state only): a damaged or foreign file raises :class:`CheckpointError` naming the file
and the reason instead of unpickling arbitrary objects.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctrlbench.io import atomic_write

__all__ = ["CheckpointError", "capture_rng", "load_checkpoint", "restore_rng", "save_checkpoint"]


class CheckpointError(ValueError):
    """A checkpoint file cannot be read (truncated, empty, not a torch file, foreign objects)."""


def _safe_globals() -> list[Any]:
    """The non-tensor classes a checkpoint holds: the numpy legacy RNG state's array."""
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return [_reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def capture_rng() -> dict[str, Any]:
    """Global RNG states of python, numpy and torch (CPU and, when present, CUDA)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002 - the legacy global stream
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Restore :func:`capture_rng` output."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` with ``torch.save`` atomically (:func:`ctrlbench.io.atomic_write`): a crash
    mid-write leaves the previous checkpoint untouched."""
    return atomic_write(path, lambda fh: torch.save(state, fh))


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        The file is empty, truncated, not a torch file, holds objects other than tensors and
        plain data, or is not a mapping; the message names the file and the reason.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if Path(path).stat().st_size == 0:
        raise CheckpointError(f"{path} is empty")
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except PermissionError:  # unreadable for this user: not damage, the file stays in place
        raise
    except Exception as exc:  # torch raises many types for damaged files
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if "Weights only load failed" in reason:
            reason = "it holds objects other than tensors and plain data"
        raise CheckpointError(f"{path} is not a readable checkpoint: {reason[:200]}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a checkpoint")
    return state
