"""Benchmark helpers shared by the LLM benchmarks in ``studies/bench``: alternating timing and
the versions line that ends their provenance block.

Protocol (SETUP.md): time the thing and its anchor in one process, alternating, after a warm-up;
report medians and ratios; end with the provenance (commit, command, machine, threads,
versions), collected after the timing. Nothing here asserts a time.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch

from ctrlbench.machine import library_versions

__all__ = ["more_versions", "sync", "time_alternating"]


def more_versions(libs: Sequence[str]) -> str:
    """A last bullet for the provenance block: the versions of distributions a benchmark
    depends on that :func:`ctrlbench.provenance.provenance` does not record (Triton, TRL),
    e.g. ``"- also: triton 3.1.0, trl (not installed)\\n"``. Imports none of them."""
    return f"- also: {library_versions(libs)}\n"


def sync(device: str | torch.device) -> None:
    """Wait for queued CUDA work (no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_alternating(
    fns: dict[str, Callable[[], object]], *, repeats: int = 5, warmup: int = 1,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved round-robin after warm-up."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            samples[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in samples.items()}
