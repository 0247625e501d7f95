"""Wall time of one CPU-bound study on the local process pool and on Ray, with 1 and 2 workers.

The study: ``runs`` seeds of the designed PI on ``ctrlbench/PMSMCurrent-v0`` (gym-electric-motor
underneath; ``steps`` control steps each, about 3 s of one core per run), run four times into
fresh folders through ``ctrlbench.study.run_study``: local backend with 1 and 2 workers, Ray
backend (a local Ray started per study, as ``ctrlbench study --backend ray`` does) with 1 and 2
workers. Each configuration's wall time includes everything the command does (Ray's start and
shutdown too); for Ray the time of the study alone (Ray started before, stopped after, as on a
long-lived cluster) is shown as well. The speed-up is the 1-worker time over the 2-worker time of
the same backend (goal >= 1.8x at 2 workers on an idle 2-core machine). The records of all four
are checked to be the same files byte for byte (the runs are deterministic). The table ends
with the provenance (commit, command, CPU, threads, versions). It never asserts a time.

Run: ``python studies/bench/study_scaling.py`` (16 runs x 10 000 steps: ~3 min on 2 idle cores),
``--smoke`` (4 runs x 300 steps, ~30 s, most of it Ray start-up).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ctrlbench.machine import describe, load_average
from ctrlbench.provenance import format_provenance, provenance
from ctrlbench.study import StudySpec, run_study
from ctrlbench.study_ray import start_ray


@dataclass(frozen=True)
class Args:
    """Benchmark settings."""

    runs: int = 16
    """runs in the study (one seed each)"""
    steps: int = 10_000
    """control steps per run (1 s of motor time; ~3 s of CPU)"""
    backends: tuple[str, ...] = ("local", "ray")
    """backends to time"""
    smoke: bool = False
    """tiny version: 4 runs x 300 steps"""


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "records").glob("*.json"))}


def bench(args: Args) -> list[dict[str, Any]]:
    """One row per (backend, workers): wall time, runs, failures."""
    runs, steps = (4, 300) if args.smoke else (args.runs, args.steps)
    spec = StudySpec(name="scaling", plants=("ctrlbench/PMSMCurrent-v0",), controllers=("pid",),
                     seeds=tuple(range(runs)), steps=steps)
    rows: list[dict[str, Any]] = []
    first: dict[str, bytes] | None = None
    with tempfile.TemporaryDirectory(prefix="ctrlbench-scaling-") as tmp:
        for backend in args.backends:
            for workers in (1, 2):
                out = Path(tmp) / f"{backend}-{workers}"
                load = load_average()
                t0 = time.perf_counter()
                if backend == "ray":  # started here to time Ray's start and stop apart
                    start_ray(None, workers)
                t1 = time.perf_counter()
                records = run_study(spec, out, workers=workers, backend=backend)
                t2 = time.perf_counter()
                if backend == "ray":
                    import ray

                    ray.shutdown()
                wall, runs_s = time.perf_counter() - t0, t2 - t1
                files = _files(out)
                first = first if first is not None else files
                rows.append({"backend": backend, "workers": workers, "wall_s": wall,
                             "study_s": runs_s,
                             "runs": len(records),
                             "failed": sum(r["status"] != "ok" for r in records),
                             "same_records": files == first,
                             "load_before": None if load is None else load[0]})
                print(f"{backend:5s} x{workers}: {wall:7.2f} s, runs {runs_s:7.2f} s "
                      f"({len(records)} runs, load "
                      f"{rows[-1]['load_before']})", flush=True)
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    lines = ["| backend | workers | wall [s] | speed-up | study without Ray start/stop [s] | "
             "speed-up | runs | failed | same records | 1-min load before |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    one = {r["backend"]: r for r in rows if r["workers"] == 1}
    for r in rows:
        base = one[r["backend"]]
        lines.append(f"| {r['backend']} | {r['workers']} | {r['wall_s']:.2f} | "
                     f"{base['wall_s'] / r['wall_s']:.2f}x | {r['study_s']:.2f} | "
                     f"{base['study_s'] / r['study_s']:.2f}x | {r['runs']} | {r['failed']} | "
                     f"{r['same_records']} | {r['load_before']} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in fields(Args):
        if f.type in ("bool", bool):
            p.add_argument(f"--{f.name}", action="store_true")
        elif f.name == "backends":
            p.add_argument("--backends", nargs="+", default=list(Args.backends),
                           choices=("local", "ray"))
        else:
            p.add_argument(f"--{f.name}", type=int, default=f.default)
    ns = p.parse_args()
    args = Args(**{**vars(ns), "backends": tuple(ns.backends)})
    print(describe(["ray", "gym_electric_motor", "numpy"], threads="1 thread per worker"))
    rows = bench(args)
    print(_table(rows))
    print("\n" + format_provenance(provenance()), end="")


if __name__ == "__main__":
    main()
