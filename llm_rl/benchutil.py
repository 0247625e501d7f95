"""Benchmark helpers shared by ``studies/bench/llm_*.py``: machine report and alternating timing.

Protocol (SETUP.md): time the thing and its anchor in one process, alternating, after a warm-up;
report medians and ratios; print the machine. Nothing here asserts a time.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

__all__ = ["machine_info", "sync", "time_alternating"]


def machine_info() -> str:
    """CPU model, cores, GPU, and library versions, one line each."""
    import transformers

    from ctrlbench.machine import cpu_name, gpu_name

    cpu = cpu_name()
    gpu = gpu_name() or "none"
    lines = [
        f"cpu: {cpu} ({os.cpu_count()} cores, torch threads {torch.get_num_threads()})",
        f"gpu: {gpu}",
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}",
    ]
    try:
        import triton

        lines.append(f"triton {triton.__version__}")
    except ImportError:
        lines.append("triton: not installed")
    return "\n".join(lines)


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
