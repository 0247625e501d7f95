"""Forward-pass time of the laser pulse chain (``plants.laser.model``): batched vs a per-pulse loop.

One ``PulseModel`` (B = 2, MODELS.md section 4: 4096 frequency points, 16384-point zero-padded
output) on the same random normalized settings, for each batch size ``n`` (default 1, 64 and
1024): the batched call ``forward(controls[:n])`` against a plain Python loop
``for c in controls[:n]: forward(c)``, side by side in one run, alternating which goes first,
after a warm-up. Paths:

- **numpy**: numpy / scipy.fft, float64 (``exp(i phi)`` goes through torch's kernels when torch
  is installed; its thread count is the row's);
- **torch CPU** float64, 1 thread, and again with 2 threads;
- **torch CUDA** float64 (and float32), when a GPU is visible: batch throughput; the timings
  synchronize the device.

Reports medians of per-pulse milliseconds, pulses per second and the ratio loop / batch. Goal to
report against: <= 0.5 ms per pulse in a batch on this CPU (the authors' code: 2.7 ms per pass on
this class of CPU). It never asserts a time.

Run: ``python studies/bench/laser_pass.py`` (~2 min on 2 cores), ``--quick`` (~10 s);
``--out PATH`` also writes the results as JSON. The table and the JSON carry the provenance
(commit, command, CPU/GPU, threads, versions).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ctrlbench.io import atomic_write_bytes
from ctrlbench.machine import describe, load_average
from ctrlbench.options import Options, option, parse_flags
from ctrlbench.provenance import format_provenance, provenance
from plants.laser.model import PulseModel, denormalize

LIBS = ["numpy", "scipy", "torch"]
GOAL_MS = 0.5
"""Goal: per-pulse time in a batch on the CPU [ms]."""
AUTHORS_MS = 2.7
"""The authors' code, one forward pass on this class of CPU [ms]."""


@dataclass(frozen=True)
class Args(Options):
    """Benchmark settings."""

    label = "laser_pass"
    batches: tuple[int, ...] = option((1, 64, 1024), "batch sizes (pulses per batched call)",
                                      ge=1, le=100_000)
    gpu_batches: tuple[int, ...] = option((1024, 8192), "batch sizes on CUDA (throughput)",
                                          ge=1, le=1_000_000)
    repeats: int = option(7, "timed samples per path, size and method", ge=1, le=1000)
    warmup: int = option(1, "untimed samples first", ge=0, le=100)
    min_pulses: int = option(64, "pulses per timed sample at least (small n: several calls)",
                             ge=1, le=100_000)
    seed: int = option(0, "seed of the random settings", ge=0)
    quick: bool = option(False, "seconds-long version (batches 1 and 16, 2 repeats)")
    out: str | None = option(None, "also write the results as JSON to this path")


QUICK = {"batches": (1, 16), "gpu_batches": (1024,), "repeats": 2, "min_pulses": 8}


def _time(fn: Callable[[], object], sync: Callable[[], None]) -> float:
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - t0


def _case(model: PulseModel, controls: Any, n: int, calls: int) -> dict[str, Callable[[], None]]:
    """The batched call and the per-pulse loop over the first ``n`` settings, ``calls`` times."""
    batch = controls[:n]
    rows = [batch[i] for i in range(n)]

    def batched() -> None:
        for _ in range(calls):
            model.forward(batch)

    def loop() -> None:
        for _ in range(calls):
            for c in rows:
                model.forward(c)

    return {"batch": batched, "loop": loop}


def bench_path(model: PulseModel, controls: Any, sizes: tuple[int, ...], args: Args,
               sync: Callable[[], None], with_loop: bool = True) -> list[dict[str, Any]]:
    """Median per-pulse seconds of the batched call (and the loop) for each size."""
    out = []
    for n in sizes:
        calls = max(1, -(-args.min_pulses // n))
        fns = _case(model, controls, n, calls)
        if not with_loop:
            del fns["loop"]
        samples: dict[str, list[float]] = {k: [] for k in fns}
        for r in range(args.warmup + args.repeats):
            order = list(fns) if r % 2 == 0 else list(fns)[::-1]
            for k in order:
                t = _time(fns[k], sync) / (n * calls)
                if r >= args.warmup:
                    samples[k].append(t)
        row: dict[str, Any] = {"n": n, "calls_per_sample": calls}
        for k, v in samples.items():
            row[f"{k}_s"] = statistics.median(v)
            row[f"{k}_samples_s"] = v
        out.append(row)
    return out


def bench(args: Args) -> dict[str, Any]:
    """Every path; returns what the JSON holds."""
    model = PulseModel()
    u = np.random.default_rng(args.seed).random((max(args.batches), 3))
    controls = denormalize(u)
    paths: list[dict[str, Any]] = []

    def nothing() -> None:
        return None

    torch: Any
    try:
        import torch
    except ImportError:
        torch = None
        print("torch not importable: the torch rows are skipped")
    if torch is not None:
        torch.set_num_threads(1)
    paths.append({"path": "numpy", "dtype": "float64", "device": "cpu", "threads": 1,
                  "rows": bench_path(model, controls, args.batches, args, nothing)})
    if torch is None:
        return {"paths": paths}
    ct = torch.tensor(controls, dtype=torch.float64)
    for threads in (1, 2):
        torch.set_num_threads(threads)
        paths.append({"path": "torch", "dtype": "float64", "device": "cpu", "threads": threads,
                      "rows": bench_path(model, ct, args.batches, args, nothing)})
    torch.set_num_threads(1)
    if torch.cuda.is_available():
        u_gpu = np.random.default_rng(args.seed).random((max(args.gpu_batches), 3))
        c_gpu = denormalize(u_gpu)
        for dtype in (torch.float64, torch.float32):
            cg = torch.tensor(c_gpu, dtype=dtype, device="cuda")
            sizes = tuple(args.gpu_batches)
            # the loop only over the smallest size: one pulse per launch sequence
            small = bench_path(model, cg, sizes[:1], args, torch.cuda.synchronize)
            rest = bench_path(model, cg, sizes[1:], args, torch.cuda.synchronize,
                              with_loop=False) if len(sizes) > 1 else []
            paths.append({"path": "torch", "dtype": str(dtype).removeprefix("torch."),
                          "device": torch.cuda.get_device_name(0), "threads": 1,
                          "rows": small + rest})
    return {"paths": paths}


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x * 1e3:.3f}"


def main(argv: list[str] | None = None) -> int:
    """Print the machine and one table row per path and batch size; ``--out``: JSON too."""
    args = parse_flags(Args, argv, description=__doc__.splitlines()[0],
                       presets={"quick": QUICK})
    threads = (f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, scipy.fft 1 worker, "
               "torch threads per row")
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = f"GPU {torch.cuda.get_device_name(0)}"
    except ImportError:
        pass
    machine = describe(LIBS, f"{threads}; {gpu}")
    print("machine: " + machine)
    load = load_average()
    print(f"load average before (1, 5, 15 min): {load} (other processes share the cores)")
    t0 = time.perf_counter()
    res = bench(args)
    load_after = load_average()
    print(f"load average after: {load_after}")
    model = PulseModel()
    print(f"PulseModel: {model.params.n_freq} frequency points, {model.n_time}-point output, "
          f"B = {model.params.b_integral}; medians of {args.repeats} samples after "
          f"{args.warmup} warm-up, at least {args.min_pulses} pulses per sample\n")
    print("| path | dtype | device | threads | n | batch ms/pulse | loop ms/pulse | loop/batch "
          "| batch pulses/s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    best_cpu = None
    for p in res["paths"]:
        for row in p["rows"]:
            b, lp = row["batch_s"], row.get("loop_s")
            ratio = "-" if lp is None else f"{lp / b:.2f}"
            print(f"| {p['path']} | {p['dtype']} | {p['device']} | {p['threads']} | {row['n']} "
                  f"| {_ms(b)} | {_ms(lp)} | {ratio} | {1 / b:,.0f} |")
            if p["device"] == "cpu" and (best_cpu is None or b < best_cpu[0]):
                best_cpu = (b, f"{p['path']} {p['threads']} thread(s), n = {row['n']}")
    wall = time.perf_counter() - t0
    if best_cpu is not None:
        print(f"\nbest CPU per-pulse time in a batch: {best_cpu[0] * 1e3:.3f} ms ({best_cpu[1]}); "
              f"goal <= {GOAL_MS} ms; the authors' code {AUTHORS_MS} ms per pass")
    print(f"wall {wall:.0f} s")
    prov = provenance()
    if args.out:
        doc = {"machine": machine, "load_before": load, "load_after": load_after,
               "args": asdict(args), "goal_ms": GOAL_MS,
               "authors_ms": AUTHORS_MS, "wall_s": wall, **res, "provenance": prov}
        path = atomic_write_bytes(args.out, (json.dumps(doc, indent=1) + "\n").encode())
        print(f"wrote {path}")
    print("\n" + format_provenance(prov), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
