"""Atomic checkpoints and the RNG states that make a resume exact."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ctrlbench.io import atomic_write

__all__ = ["capture_rng", "load_checkpoint", "restore_rng", "save_checkpoint"]


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
    """Read a checkpoint written by :func:`save_checkpoint` (our own files, so not weights-only)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=False)
