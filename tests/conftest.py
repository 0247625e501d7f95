"""Shared test set-up: one torch thread, no hub access, headless matplotlib."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

try:  # torch is optional for the core tests
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass

# Property-based fuzzing: a fast profile by default, a deeper one with
# ``CTRLBENCH_FUZZ=slow`` (or ``pytest --hypothesis-profile=slow``).
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "slow", max_examples=400, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("CTRLBENCH_FUZZ", "default"))
