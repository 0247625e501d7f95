"""Step time of the Rayleigh–Bénard solver (``plants.rbc.solver``), alone and batched.

At the authors' setting (Ra 1e4, Pr 0.7, 96 Fourier x 64 Chebyshev points, dt 0.05, IMEX RK3),
from a developing flow (40 time units after the authors' random start):

- **one CPU core**: milliseconds per step of one flow (torch with 1 thread). Goal <= 3 ms; the
  authors report ~17 ms per step for their shenfun solver and ~18 ms for Dedalus on one core.
- **batches** of 1, 16 and 64 flows in one call: simulated time units per second, aggregate
  (``batch x steps x dt / wall``), on the CPU and, when one is visible, on the GPU (goal >= 500
  on an H100/H200).
- **peer, side by side**: with ``--peer_python PATH`` (a separate environment with shenfun; the
  install is in ``studies/README.md``) the authors' solver is timed in the same run by
  ``studies/bench/rbc_peer_shenfun.py`` and the ratio printed.

Medians over ``--repeats`` samples after a warm-up; the load average before and after is
printed (other processes share the cores). It never asserts a time.

Run: ``python studies/bench/rbc_solver.py`` (~1 min on the CPU), ``--quick`` (seconds);
``--out PATH`` also writes JSON. The table and the JSON carry the provenance (commit, command,
CPU/GPU, threads, versions).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ctrlbench.io import atomic_write_bytes
from ctrlbench.machine import describe, load_average
from ctrlbench.options import Options, option, parse_flags
from ctrlbench.provenance import format_provenance, provenance
from plants.rbc.model import RBCParams
from plants.rbc.solver import SpectralRBC

GOAL_MS = 3.0
"""Goal: one step of one flow on one CPU core [ms]."""
PEERS_MS = {"shenfun (authors)": 17.0, "Dedalus": 18.0}
"""Per-step times on one core reported for the peers [ms] (not measured here)."""
PEER_SCRIPT = Path(__file__).with_name("rbc_peer_shenfun.py")


@dataclass(frozen=True)
class Args(Options):
    """Benchmark settings."""

    label = "rbc_solver"
    steps: int = option(100, "timed steps per sample", ge=1, le=100_000)
    repeats: int = option(5, "timed samples per case", ge=1, le=1000)
    warmup: int = option(10, "untimed steps first", ge=0, le=10_000)
    develop: float = option(40.0, "time units the flow develops before timing", ge=0.0,
                            le=1000.0)
    batches: tuple[int, ...] = option((1, 16, 64), "batch sizes", ge=1, le=4096)
    gpu_batches: tuple[int, ...] = option((1, 16, 64, 256), "batch sizes on CUDA", ge=1,
                                          le=65536)
    peer_python: str = option("", "python of an environment with shenfun (side-by-side run)")
    quick: bool = option(False, "seconds-long version (20 steps, 2 repeats, batches 1, 4)")
    out: str | None = option(None, "also write the results as JSON to this path")


QUICK = {"steps": 20, "repeats": 2, "warmup": 2, "develop": 1.0, "batches": (1, 4),
         "gpu_batches": (1, 16)}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_case(batch: int, device: str, args: Args) -> dict[str, Any]:
    """Median seconds per step of ``batch`` flows on ``device``."""
    params = RBCParams()
    solver = SpectralRBC(params, batch=batch, device=device)
    solver.authors_start(noise=1e-3, seed=0)
    solver.step(round(args.develop / params.dt) + args.warmup)
    samples = []
    for _ in range(args.repeats):
        _sync(device)
        t0 = time.perf_counter()
        solver.step(args.steps)
        _sync(device)
        samples.append((time.perf_counter() - t0) / args.steps)
    per_step = statistics.median(samples)
    return {"batch": batch, "device": device, "ms_per_step": 1e3 * per_step,
            "ms_per_step_per_flow": 1e3 * per_step / batch,
            "time_units_per_s": batch * params.dt / per_step, "samples_s": samples,
            "blown_up": int(solver.blown_up.sum())}


def peer(python: str, steps: int) -> dict[str, Any]:
    """The authors' shenfun solver, timed by its own script in its own environment."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([python, str(PEER_SCRIPT), "--steps", str(steps)], env=env,
                          capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"peer run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    out: dict[str, Any] = json.loads(line)
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the machine and one row per case; ``--out``: JSON too."""
    args = parse_flags(Args, argv, description=__doc__.splitlines()[0],
                       presets={"quick": QUICK})
    torch.set_num_threads(1)
    cuda = torch.cuda.is_available()
    gpu = f"GPU {torch.cuda.get_device_name(0)}" if cuda else "no GPU"
    machine = describe(["numpy", "torch"], f"torch threads 1; {gpu}")
    print("machine: " + machine)
    print(f"load average before: {load_average()}")
    rows = [time_case(b, "cpu", args) for b in args.batches]
    if cuda:
        rows += [time_case(b, "cuda", args) for b in args.gpu_batches]
    peer_row = peer(args.peer_python, max(args.steps, 50)) if args.peer_python else None
    print(f"load average after: {load_average()}\n")
    print("| device | batch | ms/step | ms/step/flow | time units/s (aggregate) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['device']} | {r['batch']} | {r['ms_per_step']:.2f} | "
              f"{r['ms_per_step_per_flow']:.3f} | {r['time_units_per_s']:.1f} |")
    one = next((r for r in rows if r["device"] == "cpu" and r["batch"] == 1), None)
    if one is not None:
        print(f"\none flow, one core: {one['ms_per_step']:.2f} ms/step (goal <= {GOAL_MS}); "
              + ", ".join(f"{k}: ~{v} ms reported" for k, v in PEERS_MS.items()))
    if peer_row is not None and one is not None:
        ratio = peer_row["ms_per_step"] / one["ms_per_step"]
        print(f"side by side: {peer_row.get('solver')} {peer_row['ms_per_step']:.2f} ms/step "
              f"-> ours is {ratio:.1f}x faster")
    if not cuda:
        print("no GPU here: the GPU rows come from the same command on a GPU machine")
    prov = provenance()
    if args.out:
        atomic_write_bytes(Path(args.out), json.dumps(
            {"machine": machine, "args": asdict(args), "rows": rows, "peer": peer_row,
             "provenance": prov}, indent=1).encode())
        print(f"wrote {args.out}")
    print("\n" + format_provenance(prov), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
