"""The developed uncontrolled flow episodes start from, generated once and cached on disk.

The authors restart every episode from one uncontrolled flow developed for 400 time units from
their random start. :func:`developed_state` runs that once per parameter set and keeps the
result as ``rbc_<key>.npz`` (arrays plus a JSON record of the parameters, the physical and probe
Nusselt numbers and the roll count), written atomically; a later call with the same parameters
loads it. The key hashes every parameter that changes the state.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ctrlbench.io import atomic_write
from plants.rbc.model import RBCParams
from plants.rbc.solver import BLOWUP, FlowState, SpectralRBC

__all__ = ["CACHE_VERSION", "cache_root", "developed_state", "flow_summary"]

CACHE_VERSION = 2
"""Bumped whenever the solver changes the states it produces."""


def cache_root(cache_dir: str = "") -> Path:
    """``cache_dir``, else ``$CTRLBENCH_CACHE``, else ``~/.cache/ctrlbench``; ``/rbc`` below."""
    base = cache_dir or os.environ.get("CTRLBENCH_CACHE") or str(Path.home() / ".cache" /
                                                                 "ctrlbench")
    return Path(base) / "rbc"


def flow_summary(solver: SpectralRBC) -> dict[str, list[float] | list[int]]:
    """Physical Nusselt numbers, the probe Nusselt number and the roll count of every flow."""
    from plants.rbc.backend import spectral_measure

    m = spectral_measure(solver)
    return {k: m[k].tolist() for k in ("nu_bottom", "nu_top", "nu_volume", "nu_probe", "rolls")}


def developed_state(params: RBCParams, start_time: float = 400.0, seed: int = 0,
                    noise: float = 1e-3, cache_dir: str = "", device: str = "cpu"
                    ) -> tuple[FlowState, dict[str, Any]]:
    """The flow after ``start_time`` uncontrolled time units from the authors' random start
    (uniform bottom temperature 2), and its record; computed once, then read from the cache."""
    steps = round(start_time / params.dt)
    record: dict[str, Any] = {"params": asdict(params), "start_time": float(start_time),
                              "seed": int(seed), "noise": float(noise),
                              "blowup": BLOWUP, "version": CACHE_VERSION}
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
    path = cache_root(cache_dir) / f"rbc_{key}.npz"
    if path.exists():
        try:
            with np.load(path) as data:
                state = FlowState(data["psi"], data["mean_u"], data["temp"],
                                  np.zeros(1) + steps * params.dt)
                meta = json.loads(str(data["record"]))
            if all(np.all(np.isfinite(a)) for a in (state.psi, state.mean_u, state.temp)):
                return state, meta
            path.unlink(missing_ok=True)          # not finite: rebuilt below
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            path.unlink(missing_ok=True)          # a damaged cache file is rebuilt
    solver = SpectralRBC(params, batch=1, device=device)
    solver.authors_start(noise=noise, seed=seed)
    solver.step(steps)
    if bool(solver.blown_up.any()):
        raise RuntimeError(f"the uncontrolled flow blew up before t = {start_time} at ny = "
                           f"{params.ny}, dt = {params.dt}: the explicit advection needs a "
                           "smaller dt on a finer Chebyshev grid (96 points: dt 0.025)")
    state = solver.get_state()
    meta = {**record, **{k: v[0] for k, v in flow_summary(solver).items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: np.savez(fh, psi=state.psi, mean_u=state.mean_u,
                                           temp=state.temp, record=np.array(json.dumps(meta))))
    return state, meta
