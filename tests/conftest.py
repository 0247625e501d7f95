"""Shared test set-up: one torch thread, no hub access, headless matplotlib."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

try:  # torch is optional for the core tests
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
