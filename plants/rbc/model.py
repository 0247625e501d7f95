"""Rayleigh–Bénard convection at the Vignon et al. (2023) setting: parameters, actuation, probes.

Everything here is numpy and backend-independent (MODELS.md section 1); the solvers live in
:mod:`plants.rbc.solver` (spectral, torch) and :mod:`plants.rbc.fem_backend` (DOLFINx).

Non-dimensional Boussinesq equations in free-fall units, lengths scaled by the half-height::

    du/dt + (u.grad)u = -grad p + nu lap u + T e_y,   div u = 0,
    dT/dt + div(u T) = kappa lap T,   nu = sqrt(Pr/Ra),  kappa = 1/sqrt(Pr Ra),

on x in [0, 2 pi) (periodic) and y in [-1, 1] (no-slip walls); T = 1 on the top wall and the
actuated profile (mean exactly 2) on the bottom wall, so Delta T = 1 over H = 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["DELTA_T", "HEIGHT", "N_SEGMENTS", "PROBE_COLS", "PROBE_ROWS", "SEGMENT_AMPLITUDE",
           "SMOOTH_HALF_WIDTH", "T_BOTTOM_MEAN", "T_TOP", "RBCParams", "agent_columns",
           "bottom_coefficients", "bottom_profile", "probe_nusselt", "probe_x", "probe_y",
           "recentre", "roll_count", "segment_temperatures"]

N_SEGMENTS = 10
"""Heated segments on the bottom wall (one agent each)."""
SEGMENT_AMPLITUDE = 0.75
"""Largest deviation of a segment's temperature from the bottom mean."""
SMOOTH_HALF_WIDTH = 0.03
"""Half-width of the cubic blend between neighbouring segments."""
T_BOTTOM_MEAN = 2.0
T_TOP = 1.0
DELTA_T = T_BOTTOM_MEAN - T_TOP
HEIGHT = 2.0
PROBE_ROWS = 8
"""Probe rows: every 8th of the 64-point Gauss–Chebyshev grid in y, top to bottom."""
PROBE_COLS = 32
"""Probe columns: every 3rd of 96 uniform x points."""


@dataclass(frozen=True)
class RBCParams:
    """Physical and numerical parameters (Vignon et al. 2023; their shenfun solver's defaults).

    Attributes
    ----------
    ra:
        Rayleigh number in half-height scaling (1e4; 8e4 over the full gap). Onset of
        convection is near 213.5 in this scaling.
    pr:
        Prandtl number (0.7).
    nx:
        Fourier collocation points in x (96); modes 0 .. nx/2 - 1 are kept, products are
        dealiased by the 3/2 rule.
    ny:
        Chebyshev–Gauss–Lobatto points in y, walls included (64).
    dt:
        Time step [free-fall time units] (0.05).
    """

    ra: float = 1e4
    pr: float = 0.7
    nx: int = 96
    ny: int = 64
    dt: float = 0.05

    def __post_init__(self) -> None:
        for name, lo in (("ra", 0.0), ("pr", 0.0), ("dt", 0.0)):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > lo):
                raise ValueError(f"RBCParams.{name} = {value!r}: must be a finite number > {lo}")
        if not (isinstance(self.nx, int) and self.nx >= 8 and self.nx % 2 == 0):
            raise ValueError(f"RBCParams.nx = {self.nx!r}: must be an even integer >= 8")
        if not (isinstance(self.ny, int) and 8 <= self.ny <= 512):
            raise ValueError(f"RBCParams.ny = {self.ny!r}: must be an integer in [8, 512]")

    @property
    def nu(self) -> float:
        """Kinematic viscosity sqrt(Pr/Ra)."""
        return math.sqrt(self.pr / self.ra)

    @property
    def kappa(self) -> float:
        """Thermal diffusivity 1/sqrt(Pr Ra)."""
        return 1.0 / math.sqrt(self.pr * self.ra)


def segment_temperatures(action: ArrayLike) -> NDArray[np.float64]:
    """Segment temperatures from actions in [-1, 1], over the last axis (MODELS.md section 1).

    ``v = 0.75 a``, ``m = mean(v)``, ``K2 = max(1, max|v - m| / 0.75)``,
    ``T_i = 2 + (v_i - m) / K2``: the mean is exactly 2 and ``|T_i - 2| <= 0.75``.
    """
    a = np.asarray(action, dtype=np.float64)
    v = SEGMENT_AMPLITUDE * a
    dev = v - v.mean(axis=-1, keepdims=True)
    k2 = np.maximum(1.0, np.abs(dev).max(axis=-1, keepdims=True) / SEGMENT_AMPLITUDE)
    out: NDArray[np.float64] = T_BOTTOM_MEAN + dev / k2
    return out


def _edges() -> NDArray[np.float64]:
    return 2.0 * np.pi * np.arange(N_SEGMENTS) / N_SEGMENTS


def bottom_profile(temps: ArrayLike, x: ArrayLike,
                   half_width: float = SMOOTH_HALF_WIDTH) -> NDArray[np.float64]:
    """The bottom-wall temperature at points ``x`` for segment temperatures ``temps`` (..., 10).

    Segment ``i`` spans ``[2 pi i / 10, 2 pi (i + 1) / 10)``; across each boundary ``a_i`` the
    profile blends from ``T_{i-1}`` to ``T_i`` over ``[a_i - w, a_i + w]`` by the cubic
    ``3 t^2 - 2 t^3`` (``t = (x - a_i + w) / 2w``), periodically. The blend is antisymmetric
    about ``a_i``, so the profile's mean over x equals the mean of ``temps``.
    """
    t_arr = np.asarray(temps, dtype=np.float64)
    xs = np.mod(np.asarray(x, dtype=np.float64), 2.0 * np.pi)
    edges = _edges()
    jumps = t_arr - np.roll(t_arr, 1, axis=-1)                     # T_i - T_{i-1} at edge i
    # distance from each edge, wrapped to [-pi, pi)
    s = np.mod(xs[:, None] - edges[None, :] + np.pi, 2.0 * np.pi) - np.pi   # (n, 10)
    t = np.clip((s + half_width) / (2.0 * half_width), 0.0, 1.0)
    ramp = t * t * (3.0 - 2.0 * t)                                 # 0 before, 1 after the edge
    # T(x) = T_seg(x) + sum over edges of jump * (ramp - step), the segment taken as the one
    # whose left edge is the nearest at or before x (from the same s, so never inconsistent)
    step = (s >= 0.0).astype(np.float64)
    seg = np.argmin(np.where(s >= 0.0, s, np.inf), axis=-1)       # (n,)
    base = np.take(t_arr, seg, axis=-1)
    out: NDArray[np.float64] = base + np.einsum("...e,ne->...n", jumps, ramp - step)
    return out


def bottom_coefficients(temps: ArrayLike, n_modes: int,
                        half_width: float = SMOOTH_HALF_WIDTH) -> NDArray[np.complex128]:
    """Exact Fourier coefficients ``c_k`` (``f(x) = sum_k c_k e^{ikx}``, k = 0 .. n_modes - 1)
    of :func:`bottom_profile`, shape ``(..., n_modes)``.

    ``f' = sum_i (T_i - T_{i-1}) b(x - a_i)`` with ``b`` the blend's derivative bump, whose
    transform is ``3 (sin kw - kw cos kw) / (kw)^3``; so ``c_k = sum_i (T_i - T_{i-1})
    e^{-i k a_i} B(kw) / (2 pi i k)`` and ``c_0 = mean(T_i)`` (exactly 2 for
    :func:`segment_temperatures`).
    """
    t_arr = np.asarray(temps, dtype=np.float64)
    k = np.arange(1, n_modes, dtype=np.float64)
    kw = k * half_width
    big = kw > 1e-3                       # the series below is exact to ~1e-13 under 1e-3
    safe = np.where(big, kw, 1.0)         # no 0 / 0 (and no warning) where the series is used
    bump = np.where(big, 3.0 * (np.sin(safe) - safe * np.cos(safe)) / safe ** 3,
                    1.0 - kw * kw / 10.0)
    jumps = t_arr - np.roll(t_arr, 1, axis=-1)
    phase = np.exp(-1j * np.outer(_edges(), k))                    # (10, K-1)
    higher = (jumps @ phase) * bump / (2j * np.pi * k)
    out = np.empty((*t_arr.shape[:-1], n_modes), dtype=np.complex128)
    out[..., 0] = t_arr.mean(axis=-1)
    out[..., 1:] = higher
    return out


def probe_y() -> NDArray[np.float64]:
    """The 8 probe heights: rows 0, 8, .., 56 of the 64 Gauss–Chebyshev points, top first."""
    j = np.arange(0, 64, 64 // PROBE_ROWS)
    out: NDArray[np.float64] = np.cos(np.pi * (2 * j + 1) / 128.0)
    return out


def probe_x() -> NDArray[np.float64]:
    """The 32 probe abscissae: every 3rd of 96 uniform points on [0, 2 pi)."""
    out: NDArray[np.float64] = (2.0 * np.pi / 96.0) * np.arange(0, 96, 96 // PROBE_COLS,
                                                             dtype=np.float64)
    return out


def probe_nusselt(uy: NDArray[np.float64], temp: NDArray[np.float64], kappa: float
                  ) -> NDArray[np.float64]:
    """The authors' "probe Nusselt number" over probe arrays ``(..., rows, cols)`` (MODELS.md).

    ``(<u_y T> - kappa mean(gradient_index(<T>_row))) / (kappa Delta T / H)``: ``<u_y T>`` is a
    plain mean over the probes and the row-mean temperature is differentiated with
    ``numpy.gradient`` with respect to the row index (rows ordered top to bottom). Not the
    physical Nusselt number: it is negative for pure conduction.
    """
    uy = np.asarray(uy, dtype=np.float64)
    temp = np.asarray(temp, dtype=np.float64)
    flux = (uy * temp).mean(axis=(-2, -1))
    grad = np.gradient(temp.mean(axis=-1), axis=-1).mean(axis=-1)
    out: NDArray[np.float64] = (flux - kappa * grad) / (kappa * DELTA_T / HEIGHT)
    return out


def agent_columns(agent: int) -> NDArray[np.int64]:
    """Probe columns whose abscissa lies in agent ``agent``'s segment (3 or 4 of them)."""
    x = probe_x()
    width = 2.0 * np.pi / N_SEGMENTS
    cols: NDArray[np.int64] = np.nonzero(np.floor(x / width + 1e-12).astype(int) == agent)[0]
    return cols


def recentre(probes: NDArray[np.float64], agent: int) -> NDArray[np.float64]:
    """Probe arrays ``(..., rows, 32)`` rolled in x so agent ``agent``'s segment sits in the
    middle: its centre, ``2 pi (agent + 0.5) / 10``, moves to column 16 (x = pi), rounded to
    the nearest probe column."""
    centre = (agent + 0.5) * PROBE_COLS / N_SEGMENTS
    shift = round(PROBE_COLS / 2 - centre)
    out: NDArray[np.float64] = np.roll(probes, shift, axis=-1)
    return out


def roll_count(uy_mid: NDArray[np.float64]) -> NDArray[np.int64]:
    """Convection rolls from the vertical velocity along a horizontal line, ``(..., n)``: the
    number of sign changes around the periodic line (two per pair of counter-rotating rolls);
    samples exactly 0 are skipped, so a line that touches zero without crossing counts nothing
    there; 0 for a flow at rest (``max |u_y| < 1e-6``)."""
    v = np.asarray(uy_mid, dtype=np.float64)
    sign = np.sign(v)
    lines = sign.reshape(-1, sign.shape[-1])
    per_line = np.zeros(lines.shape[0], dtype=np.int64)
    for i, line in enumerate(lines):
        nonzero = line[line != 0]
        per_line[i] = np.count_nonzero(nonzero != np.roll(nonzero, -1))
    count = per_line.reshape(sign.shape[:-1])
    out: NDArray[np.int64] = np.where(np.abs(v).max(axis=-1) < 1e-6, 0, count).astype(np.int64)
    return out
