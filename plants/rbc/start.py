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
import tempfile
import zipfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from plants.rbc.model import RBCParams, probe_nusselt, probe_x, probe_y, roll_count
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
    nu = solver.nusselt()
    probes = solver.fields(x=probe_x(), y=probe_y())
    mid = solver.fields(y=np.array([0.0]))[:, 1, 0]
    return {"nu_bottom": nu["bottom"].tolist(), "nu_top": nu["top"].tolist(),
            "nu_volume": nu["volume"].tolist(),
            "nu_probe": probe_nusselt(probes[:, 1], probes[:, 2],
                                      solver.params.kappa).tolist(),
            "rolls": roll_count(mid).tolist()}


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, psi=state.psi, mean_u=state.mean_u, temp=state.temp,
                     record=np.array(json.dumps(meta)))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return state, meta
