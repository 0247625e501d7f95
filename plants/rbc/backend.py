"""One interface over the two solvers, chosen by the plant option ``backend``.

:class:`Simulation` owns ``batch`` flows: it loads starts, applies segment temperatures, advances
one action period and measures probes, Nusselt numbers and rolls. ``"spectral"`` runs
:class:`~plants.rbc.solver.SpectralRBC` (any batch, CPU or GPU); ``"fem"`` runs the DOLFINx
worker of :mod:`plants.rbc.fem_backend` (one flow, CPU, the system Python; it steps with its own
stable dt, 0.01, through each action period).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from plants.rbc.model import (
    N_SEGMENTS,
    RBCParams,
    bottom_coefficients,
    probe_nusselt,
    probe_x,
    probe_y,
    roll_count,
)
from plants.rbc.options import RBCOptions

__all__ = ["Measurement", "Simulation", "params_of", "spectral_measure"]

Measurement = dict[str, NDArray[Any]]


def params_of(opts: RBCOptions) -> RBCParams:
    """The solver parameters of the plant options."""
    return RBCParams(ra=float(opts.ra), pr=float(opts.pr), nx=int(opts.nx), ny=int(opts.ny),
                     dt=float(opts.dt))


def spectral_measure(solver: Any) -> Measurement:
    """What :meth:`Simulation.measure` returns, for a :class:`~plants.rbc.solver.SpectralRBC`:
    probes, probe and physical Nusselt numbers (bottom, top, their mean, volume), rolls, time,
    blow-up flags, one entry per flow."""
    probes = solver.fields(x=probe_x(), y=probe_y())
    mid = solver.fields(y=np.array([0.0]))[:, 1, 0]
    nu = solver.nusselt()
    return {"probes": probes,
            "nu_probe": probe_nusselt(probes[:, 1], probes[:, 2], solver.params.kappa),
            "nu_bottom": nu["bottom"], "nu_top": nu["top"],
            "nu_physical": 0.5 * (nu["bottom"] + nu["top"]), "nu_volume": nu["volume"],
            "rolls": roll_count(mid), "time": solver.time.cpu().numpy(),
            "blown_up": solver.blown_up.cpu().numpy()}


class Simulation:
    """``batch`` flows under one set of options (see the module docstring)."""

    def __init__(self, opts: RBCOptions, batch: int = 1) -> None:
        self.opts = opts
        self.params = params_of(opts)
        self.batch = batch
        self._fem: Any = None
        self._solver: Any = None
        if opts.backend == "fem":
            if batch != 1:
                raise ValueError(f"backend 'fem' runs one flow; batch = {batch} needs "
                                 "backend 'spectral'")
            if opts.start != "authors":
                raise ValueError(f"backend 'fem' starts from start='authors' only, got "
                                 f"start={opts.start!r}; valid: 'authors'")
            from plants.rbc.fem_backend import FEMBackend

            self._fem = FEMBackend(self.params)
        else:
            import torch

            from plants.rbc.solver import SpectralRBC

            if opts.device == "cuda" and not torch.cuda.is_available():
                raise ValueError("device = 'cuda' but torch sees no CUDA device here; valid: "
                                 "'cpu' (or a CUDA build of torch on a GPU machine)")
            self._solver = SpectralRBC(self.params, batch=batch, device=opts.device)
        self._start: Any = None
        self._x, self._y = probe_x(), probe_y()
        self.temps = np.full((batch, N_SEGMENTS), 2.0)

    # --------------------------------------------------------------------------- starts
    def reset(self, index: NDArray[np.int64] | None = None, seed: int | None = None) -> None:
        """Put flows ``index`` (all when None) at the episode start, bottom uniform at 2."""
        idx = np.arange(self.batch) if index is None else np.asarray(index)
        self.temps[idx] = 2.0
        if self._fem is not None:
            self._fem.reset(seed=0 if seed is None else seed, noise=self.opts.noise)
            self._fem.set_bottom(self.temps[0])
            return
        solver = self._solver
        solver.set_bottom(bottom_coefficients(self.temps, solver.n_modes))
        start = self.opts.start
        if start == "developed":
            if self._start is None:
                from plants.rbc.start import developed_state

                self._start, _ = developed_state(
                    self.params, self.opts.start_time, self.opts.start_seed, self.opts.noise,
                    self.opts.cache_dir, device=self.opts.device)
            solver.set_state(self._start, index=idx if index is not None else None)
            return
        from plants.rbc.solver import initial_state

        solver.set_state(initial_state(self.params, len(idx), start, self.opts.noise, seed),
                         index=idx)

    # --------------------------------------------------------------------------- control
    def apply(self, temps: NDArray[np.float64]) -> None:
        """Segment temperatures ``(batch, 10)`` held from now on."""
        self.temps = np.asarray(temps, dtype=np.float64).reshape(self.batch, N_SEGMENTS)
        if self._fem is not None:
            self._fem.set_bottom(self.temps[0])
        else:
            self._solver.set_bottom(bottom_coefficients(self.temps, self._solver.n_modes))

    def advance(self) -> None:
        """One action period."""
        if self._fem is not None:                 # its own (smaller) stable step
            self._fem.advance(max(1, round(self.opts.action_period / self._fem.dt)))
        else:
            self._solver.step(self.opts.steps_per_action)

    # --------------------------------------------------------------------------- outputs
    def measure(self) -> Measurement:
        """Probes ``(batch, 3, 8, 32)`` (u_x, u_y, T), probe and physical Nusselt numbers,
        rolls, time and the blow-up flag of every flow."""
        if self._fem is not None:
            probes = np.asarray(self._fem.probes(self._x, self._y))[None]
            nu = self._fem.nusselt()
            mid = np.asarray(self._fem.uy_midline(96))[None]
            bottom = np.atleast_1d(np.asarray(nu["bottom"], dtype=np.float64))
            top = np.atleast_1d(np.asarray(nu["top"], dtype=np.float64))
            time = np.atleast_1d(np.asarray(self._fem.time, dtype=np.float64))
            blown = np.array([bool(self._fem.blown_up) or not np.all(np.isfinite(probes))])
            probes = np.nan_to_num(probes)
            kappa = self.params.kappa
            return {"probes": probes,
                    "nu_probe": probe_nusselt(probes[:, 1], probes[:, 2], kappa),
                    "nu_bottom": bottom, "nu_top": top, "nu_physical": 0.5 * (bottom + top),
                    "rolls": roll_count(mid), "time": time, "blown_up": blown}
        return spectral_measure(self._solver)

    def snapshot(self, nx: int = 128, ny: int = 64) -> NDArray[np.float64]:
        """``(u_x, u_y, T)`` of every flow on a uniform ``ny x nx`` grid, ``(batch, 3, ny,
        nx)``, top row first (the spectral solver interpolates exactly; the FEM worker samples
        its finite-element fields)."""
        x = 2.0 * np.pi * np.arange(nx) / nx
        y = np.linspace(1.0, -1.0, ny)
        if self._fem is not None:
            return np.asarray(self._fem.probes(x, y), dtype=np.float64)[None]
        out: NDArray[np.float64] = self._solver.fields(x=x, y=y)
        return out

    def close(self) -> None:
        """Stop the FEM worker, if any."""
        if self._fem is not None:
            self._fem.close()
            self._fem = None
