"""The DOLFINx backend against the fast spectral solver: physical Nu and roll count at a steady
state (issue 11 acceptance: agreement within 5 %).

Both solvers start from the authors' initial condition (``T = 1.5 - y/2 + 0.125 sin(pi y)``,
noise 1e-3, seed 0, uniform bottom T = 2) at Ra 1e4, Pr 0.7: the spectral solver
(:class:`plants.rbc.solver.SpectralRBC`, 96 x 64, dt 0.05) to t = 400, the FEM backend
(:class:`plants.rbc.fem_backend.FEMBackend`) until its Nu is steady (relative change below
``--tol`` over ``--chunk`` time units, both walls within 0.1 %) or ``--t-max``. Their noise
differs (different grids and generators), so they may land in different steady states: the
roll count (:func:`plants.rbc.model.roll_count` on u_y along y = 0, 96 points) is reported
beside every Nu, and when the counts differ both are also run from a 4-roll start (the
authors' start without noise plus ``0.01 sin(2x) (1 - y^2)`` on T) so that the same state is
compared.

Writes ``results/rbc_fem_compare/results.json`` (atomically; with this process's provenance and
the FEM worker's interpreter and library versions) and prints a table ending with the same
provenance. Needs DOLFINx
(``make fem``). Measured (one core, 2-core machine shared with other jobs): spectral 96 x 64 to
t = 400 in 116 s, Nu 4.9327, 4 rolls; FEM 64 x 32 cells (Q2: 129 x 65 nodes), dt 0.01, steady
at t = 200 in 715 s (35 ms/step loaded, ~11 ms/step idle), Nu 4.9275, 4 rolls: -0.11 %;
48 x 24 cells: steady at t = 240 in 406 s, Nu 4.9266, 4 rolls: -0.12 %::

    OMP_NUM_THREADS=1 .venv/bin/python studies/rbc_fem_compare.py
    OMP_NUM_THREADS=1 .venv/bin/python studies/rbc_fem_compare.py --nx-cells 16 --ny-cells 8 \\
        --t-max 5 --spectral-t 5 --out /tmp/rbc_fem_smoke          # a smoke run, seconds
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ctrlbench.io import atomic_write_bytes
from ctrlbench.provenance import format_provenance, provenance
from plants.rbc.fem_backend import SYSTEM_PYTHON, FEMBackend, available
from plants.rbc.model import RBCParams, roll_count

FOUR_ROLL = (2, 0.01)
"""The 4-roll start: wavenumber 2, amplitude 0.01 on T (times 1 - y^2)."""


def run_fem(args: argparse.Namespace, start: str) -> dict[str, Any]:
    """The FEM backend from ``start`` ("authors": noise 1e-3 seed 0; "four_roll") to a
    steady state or ``args.t_max``."""
    wall0 = time.perf_counter()
    params = RBCParams(ra=args.ra, pr=args.pr)
    with FEMBackend(params, nx_cells=args.nx_cells, ny_cells=args.ny_cells, dt=args.dt,
                    stretch=args.stretch) as fem:
        if start == "authors":
            fem.reset(seed=0, noise=1e-3)
        else:
            fem.reset(seed=0, noise=0.0, mode=FOUR_ROLL)
        steps = max(1, round(args.chunk / args.dt))
        history: list[list[float]] = []
        prev = None
        steady = False
        step_wall = 0.0
        while fem.time < args.t_max - 1e-9 and not fem.blown_up:
            w = time.perf_counter()
            series = fem.advance(steps)
            step_wall += time.perf_counter() - w
            nu_b, nu_t = float(series[1, -1]), float(series[2, -1])
            rolls = int(roll_count(fem.uy_midline(96)))
            history.append([fem.time, nu_b, nu_t, rolls])
            print(f"  fem[{start}] t = {fem.time:7.2f}  Nu = {nu_b:.5f} / {nu_t:.5f}  "
                  f"rolls {rolls}", flush=True)
            if prev is not None and abs(nu_b - prev) <= args.tol * abs(nu_b) \
                    and abs(nu_b - nu_t) <= 1e-3 * abs(nu_b):
                steady = True
                break
            prev = nu_b
        nu = fem.nusselt()
        n_steps = round(fem.time / args.dt)
        return {"start": start, "nu_bottom": nu["bottom"], "nu_top": nu["top"],
                "nu_volume": nu["volume"], "rolls": int(roll_count(fem.uy_midline(96))),
                "t": fem.time, "steady": steady, "blown_up": fem.blown_up,
                "mesh_cells": [args.nx_cells, args.ny_cells], "dt": args.dt,
                "stretch": args.stretch, "n_dofs": list(fem.n_dofs),
                "wall_s": time.perf_counter() - wall0,
                "ms_per_step": 1e3 * step_wall / max(n_steps, 1), "history": history}


def run_spectral(args: argparse.Namespace, start: str) -> dict[str, Any]:
    """The spectral solver (96 x 64, dt 0.05) from ``start`` to ``args.spectral_t``."""
    import torch

    from plants.rbc.solver import SpectralRBC

    torch.set_num_threads(1)
    wall0 = time.perf_counter()
    params = RBCParams(ra=args.ra, pr=args.pr)
    sol = SpectralRBC(params, batch=1)
    if start == "authors":
        sol.authors_start(noise=1e-3, seed=0)
    else:
        sol.authors_start(noise=0.0)
        state = sol.get_state()
        k, amp = FOUR_ROLL
        y = sol.y
        # f = c_0 + 2 Re(sum c_k e^{ikx}): a sin(kx) is c_k = -i a / 2
        state.temp[:, 1:-1, k] += -0.5j * amp * ((1.0 - y) * (1.0 + y))[1:-1]
        sol.set_state(state)
    n = round(args.spectral_t / params.dt)
    history: list[list[float]] = []
    chunk = max(1, round(args.chunk / params.dt))
    done = 0
    while done < n:
        m = min(chunk, n - done)
        sol.step(m)
        done += m
        nu = sol.nusselt()
        uy = sol.fields(y=np.array([0.0]))[0, 1, 0]
        history.append([float(sol.time[0]), float(nu["bottom"][0]), float(nu["top"][0]),
                        int(roll_count(uy))])
    nu = sol.nusselt()
    uy = sol.fields(y=np.array([0.0]))[0, 1, 0]
    return {"start": start, "nu_bottom": float(nu["bottom"][0]), "nu_top": float(nu["top"][0]),
            "nu_volume": float(nu["volume"][0]), "rolls": int(roll_count(uy)),
            "t": float(sol.time[0]), "blown_up": bool(sol.blown_up[0]),
            "grid": [params.nx, params.ny], "dt": params.dt,
            "wall_s": time.perf_counter() - wall0, "history": history}


def compare(fem: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Relative difference of the physical (bottom-wall) Nu, and whether the rolls match."""
    rel = (fem["nu_bottom"] - spec["nu_bottom"]) / spec["nu_bottom"]
    return {"start": fem["start"], "nu_fem": fem["nu_bottom"], "rolls_fem": fem["rolls"],
            "nu_spectral": spec["nu_bottom"], "rolls_spectral": spec["rolls"],
            "rel_diff": rel, "same_rolls": fem["rolls"] == spec["rolls"],
            "within_5pct": bool(abs(rel) < 0.05 and fem["rolls"] == spec["rolls"])}


WORKER_PROBE = ("import json, sys, platform, dolfinx, numpy, scipy, petsc4py, mpi4py, ufl; "
                "print(json.dumps({'python': platform.python_version(), "
                "'dolfinx': dolfinx.__version__, 'numpy': numpy.__version__, "
                "'scipy': scipy.__version__, 'petsc4py': petsc4py.__version__, "
                "'mpi4py': mpi4py.__version__, 'ufl': ufl.__version__}))")
"""Printed by the FEM worker's interpreter: the versions that produced the FEM numbers."""


def worker_versions(python: str = SYSTEM_PYTHON) -> dict[str, Any]:
    """The FEM worker interpreter's path and its Python, DOLFINx, numpy, ... versions.

    The worker runs under Debian's system Python (numpy 1.x), outside this venv, so
    :func:`ctrlbench.provenance.provenance` cannot see them. Never raises: a failed probe
    reads ``{"interpreter": python, "error": ...}``.
    """
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    try:
        done = subprocess.run([python, "-c", WORKER_PROBE], capture_output=True, text=True,
                              timeout=120, env=env, stdin=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return {"interpreter": python, "error": last}
        return {"interpreter": python, **json.loads(done.stdout)}
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        return {"interpreter": python, "error": str(exc)}


def results_data(args: argparse.Namespace, rows: list[dict[str, Any]],
                 runs: dict[str, dict[str, Any]], prov: dict[str, Any],
                 worker: dict[str, Any]) -> dict[str, Any]:
    """The ``results.json`` content: parameters, comparisons, runs, this process's
    provenance (commit, dirty tree, versions, threads, CPU/GPU, command) and the FEM worker's
    versions."""
    return {"ra": args.ra, "pr": args.pr, "comparisons": rows, "runs": runs,
            "provenance": prov, "fem_worker": worker}


def summary_tail(prov: dict[str, Any], worker: dict[str, Any]) -> str:
    """The provenance block that ends the printed summary, with the FEM worker's versions."""
    versions = ", ".join(f"{k} {v}" for k, v in worker.items() if k != "interpreter")
    return (format_provenance(prov)
            + f"- FEM worker: `{worker.get('interpreter')}`: {versions or 'unknown'}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; 0 when every same-roll comparison is within 5 %, 1 otherwise,
    2 when DOLFINx is unavailable."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ra", type=float, default=1e4)
    ap.add_argument("--pr", type=float, default=0.7)
    ap.add_argument("--nx-cells", type=int, default=64)
    ap.add_argument("--ny-cells", type=int, default=32)
    ap.add_argument("--dt", type=float, default=0.01)
    ap.add_argument("--stretch", type=float, default=1.2)
    ap.add_argument("--t-max", type=float, default=250.0, help="FEM time limit")
    ap.add_argument("--spectral-t", type=float, default=400.0)
    ap.add_argument("--chunk", type=float, default=5.0, help="time between steadiness checks")
    ap.add_argument("--tol", type=float, default=1e-4, help="relative Nu change = steady")
    ap.add_argument("--starts", default="auto",
                    help="'auto' (authors, plus four_roll when the roll counts differ), "
                         "or a comma list of authors,four_roll")
    ap.add_argument("--out", type=Path, default=Path("results/rbc_fem_compare"))
    args = ap.parse_args(argv)
    ok, why = available()
    if not ok:
        print(f"DOLFINx backend unavailable: {why}", file=sys.stderr)
        return 2
    starts = ["authors"] if args.starts == "auto" else args.starts.split(",")
    runs: dict[str, dict[str, Any]] = {}
    rows = []
    i = 0
    while i < len(starts):
        start = starts[i]
        spec = run_spectral(args, start)
        print(f"spectral[{start}]: Nu = {spec['nu_bottom']:.5f}, rolls {spec['rolls']}, "
              f"t = {spec['t']:.1f} ({spec['wall_s']:.0f} s)", flush=True)
        fem = run_fem(args, start)
        runs[start] = {"fem": fem, "spectral": spec}
        rows.append(compare(fem, spec))
        if args.starts == "auto" and start == "authors" and not rows[-1]["same_rolls"]:
            starts.append("four_roll")
        i += 1
    prov, worker = provenance(), worker_versions()
    atomic_write_bytes(args.out / "results.json", json.dumps(
        results_data(args, rows, runs, prov, worker), indent=1).encode())
    print(f"\n{'start':10s} {'Nu FEM':>9s} {'rolls':>5s} {'Nu spectral':>11s} {'rolls':>5s} "
          f"{'rel diff':>9s}  FEM run")
    for row in rows:
        f = runs[row["start"]]["fem"]
        print(f"{row['start']:10s} {row['nu_fem']:9.4f} {row['rolls_fem']:5d} "
              f"{row['nu_spectral']:11.4f} {row['rolls_spectral']:5d} {row['rel_diff']:+9.2%}  "
              f"{f['mesh_cells'][0]}x{f['mesh_cells'][1]} cells, dt {f['dt']}, t {f['t']:.0f}, "
              f"{f['wall_s']:.0f} s, {f['ms_per_step']:.1f} ms/step, steady {f['steady']}")
    print(f"wrote {args.out / 'results.json'}\n")
    print(summary_tail(prov, worker), end="")
    same = [r for r in rows if r["same_rolls"]]
    return 0 if same and all(r["within_5pct"] for r in same) else 1


if __name__ == "__main__":
    sys.exit(main())
