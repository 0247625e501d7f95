"""A batched Fourier–Chebyshev solver of 2-D Rayleigh–Bénard convection, in torch.

One :class:`SpectralRBC` steps ``batch`` independent flows (same grid and parameters, each with
its own bottom-wall temperature) in one call, on any torch device, in float64.

Discretisation
--------------
- x: Fourier, ``nx`` points, modes ``k = 0 .. nx/2 - 1`` (the Nyquist mode is dropped);
  products are formed on a ``3 nx / 2`` grid (the 3/2 dealiasing rule).
- y: collocation on the ``ny`` Chebyshev–Gauss–Lobatto points ``y_j = cos(pi j / (ny - 1))``
  (top wall first), with the spectral differentiation matrix.
- Velocity from a streamfunction, ``u = dpsi/dy``, ``v = -dpsi/dx`` (k >= 1), so
  ``div u = ik u_hat + D v_hat = ik D psi - D ik psi`` vanishes to round-off by construction;
  the x-mean velocity ``U(y)`` (k = 0) obeys its own momentum equation (no mean pressure
  gradient), with ``U(+-1) = 0``.
- Vorticity equation for ``phi = lap psi = -omega``: ``dphi/dt = nu lap phi + div(u omega)
  - dT/dx``, with clamped walls ``psi = dpsi/dy = 0``; temperature
  ``dT/dt = kappa lap T - div(u T)`` with Dirichlet walls.
- Time: the low-storage IMEX Runge–Kutta scheme of Spalart, Moser & Rogers (1991), third order
  for advection and buoyancy (explicit, weights ``gamma = (8/15, 5/12, 3/4)``,
  ``zeta = (-17/60, -5/12)``), Crank–Nicolson-like for diffusion (``alpha = beta = (4/15,
  1/15, 1/6)``): the scheme of the authors' shenfun solver (``IMEXRK3``). Its explicit part
  is stable on the imaginary axis up to ``sqrt(3)``, which a mean shear flow's Doppler term
  needs at dt = 0.05 (second-order extrapolation, SBDF2, blew up there). Its fixed point is
  the exact discrete steady state, whatever the step.

Each step solves, per Fourier mode, dense ``ny x ny`` systems whose inverses are precomputed
(boundary conditions by row replacement), so a step is a handful of batched matrix products and
two FFT calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from plants.rbc.model import T_BOTTOM_MEAN, T_TOP, RBCParams

__all__ = ["BLOWUP", "FlowState", "SpectralRBC", "cheb_matrix", "cheb_points", "initial_state"]

Tensor = torch.Tensor
BLOWUP = 10.0
"""Default speed bound beyond which a flow counts as blown up [free-fall units]."""


def cheb_points(n: int) -> NDArray[np.float64]:
    """``n`` Chebyshev–Gauss–Lobatto points ``cos(pi j / (n - 1))``, from +1 down to -1."""
    out: NDArray[np.float64] = np.cos(np.pi * np.arange(n) / (n - 1))
    return out


def cheb_matrix(n: int) -> NDArray[np.float64]:
    """The ``n x n`` Chebyshev differentiation matrix on :func:`cheb_points` (Trefethen,
    *Spectral Methods in MATLAB*, cheb.m, with the negative-sum trick on the diagonal)."""
    y = cheb_points(n)
    c = np.ones(n)
    c[0] = c[-1] = 2.0
    c *= (-1.0) ** np.arange(n)
    dy = y[:, None] - y[None, :]
    d = np.outer(c, 1.0 / c) / (dy + np.eye(n))
    d -= np.diag(d.sum(axis=1))
    out: NDArray[np.float64] = d
    return out


def cheb_interp_matrix(n: int, targets: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rows that evaluate the degree ``n - 1`` interpolant through :func:`cheb_points` at
    ``targets`` (barycentric formula, second kind)."""
    y = cheb_points(n)
    w = (-1.0) ** np.arange(n)
    w[0] *= 0.5
    w[-1] *= 0.5
    out = np.zeros((len(targets), n))
    for i, t in enumerate(np.asarray(targets, dtype=np.float64)):
        diff = t - y
        hit = np.isclose(diff, 0.0, atol=1e-15)
        if hit.any():
            out[i, np.argmax(hit)] = 1.0
            continue
        terms = w / diff
        out[i] = terms / terms.sum()
    return out


@dataclass
class FlowState:
    """The solver's state for a batch, as numpy arrays (float64 / complex128).

    ``psi``: streamfunction modes ``(batch, ny, K)`` (column 0 unused, zero); ``mean_u``: the
    x-mean velocity ``(batch, ny)``; ``temp``: temperature modes ``(batch, ny, K)``; ``time``:
    simulated time per flow ``(batch,)``. Modes follow ``f(x) = sum_k c_k e^{ikx}`` + c.c.
    """

    psi: NDArray[np.complex128]
    mean_u: NDArray[np.float64]
    temp: NDArray[np.complex128]
    time: NDArray[np.float64]

    def select(self, index: Any) -> FlowState:
        """The flows ``index`` (an int keeps the batch axis with length 1)."""
        idx = [index] if isinstance(index, int) else index
        return FlowState(self.psi[idx].copy(), self.mean_u[idx].copy(), self.temp[idx].copy(),
                         self.time[idx].copy())

    def regrid(self, ny: int, n_modes: int) -> FlowState:
        """The same flows on another grid: Chebyshev interpolation in y onto ``ny``
        Gauss–Lobatto points, Fourier modes truncated or zero-padded to ``n_modes``."""
        rows = cheb_interp_matrix(self.psi.shape[1], cheb_points(ny))

        def modes(a: NDArray[np.complex128]) -> NDArray[np.complex128]:
            out = np.zeros((a.shape[0], ny, n_modes), dtype=np.complex128)
            k = min(n_modes, a.shape[2])
            out[:, :, :k] = np.einsum("ij,bjk->bik", rows, a[:, :, :k])
            return out

        return FlowState(modes(self.psi), np.einsum("ij,bj->bi", rows, self.mean_u),
                         modes(self.temp), self.time.copy())

    @staticmethod
    def stack(states: list[FlowState]) -> FlowState:
        """States concatenated along the batch axis."""
        return FlowState(np.concatenate([s.psi for s in states]),
                         np.concatenate([s.mean_u for s in states]),
                         np.concatenate([s.temp for s in states]),
                         np.concatenate([s.time for s in states]))


class SpectralRBC:
    """Batched 2-D Boussinesq solver (see the module docstring for the method).

    Parameters
    ----------
    params:
        Grid, Ra, Pr and dt.
    batch:
        Number of independent flows stepped together.
    device:
        Torch device (``"cpu"``, ``"cuda"``...).
    blowup:
        A flow whose speed bound (``|U| + 2 sum_k |u_k|`` per row, and the same for ``v``:
        never below the largest physical velocity) exceeds this (0: :data:`BLOWUP`, 10), or
        turns non-finite, is flagged in :attr:`blown_up` and frozen at its last finite state;
        it never produces NaN. Velocities are O(0.1-1) in free-fall units; 10 is far above any
        physical flow here.

    Stability: the advection is explicit, so dt is bounded by the finest Chebyshev spacing;
    at Ra 1e4, 64 and 80 points hold dt = 0.05, 96 points need dt = 0.025 (measured: at 0.05
    the flow drifts to a non-physical state).
    """

    def __init__(self, params: RBCParams, batch: int = 1, device: str | torch.device = "cpu",
                 blowup: float = 0.0) -> None:
        if not (isinstance(batch, int) and batch >= 1):
            raise ValueError(f"batch = {batch!r}: must be an integer >= 1")
        self.params = params
        self.batch = batch
        self.device = torch.device(device)
        self.blowup = float(blowup) if blowup > 0.0 else BLOWUP
        p = params
        self.n_modes = p.nx // 2
        self.n_pad = 3 * p.nx // 2
        ny, nk = p.ny, self.n_modes
        f64, c128 = torch.float64, torch.complex128

        def t(a: Any, dtype: torch.dtype = f64) -> Tensor:
            return torch.as_tensor(np.asarray(a), dtype=dtype, device=self.device)

        self.y = cheb_points(ny)
        d1 = cheb_matrix(ny)
        d2 = d1 @ d1
        self._d1_np = d1
        self.d1 = t(d1, c128)
        self.d2 = t(d2, c128)
        self.d1_real = t(d1)
        k = np.arange(nk, dtype=np.float64)
        self.k = t(k)
        self.ik = t(1j * k, c128)                     # (K,)
        self.k2 = t(k * k, c128)
        self._build_solvers(d1, d2, k)
        self.blown_up = torch.zeros(batch, dtype=torch.bool, device=self.device)
        self._bottom = torch.zeros(batch, nk, dtype=c128, device=self.device)
        self._bottom[:, 0] = T_BOTTOM_MEAN
        self._walls_from_bottom()
        self.steps = 0
        self.time = torch.zeros(batch, dtype=f64, device=self.device)
        self._zero_state()

    # ----------------------------------------------------------------------------- operators
    def _build_solvers(self, d1: NDArray[np.float64], d2: NDArray[np.float64],
                       k: NDArray[np.float64]) -> None:
        """Per Runge–Kutta stage, the inverses of the implicit operators of every mode.

        A stage solves ``A x_new = R x + e`` with ``A = 1/(beta dt) - L`` (times ``lap`` for
        the streamfunction) and ``R = 1/(beta dt) + L``; the boundary rows of ``A`` are
        replaced by the wall conditions and the same rows of the right-hand side carry the wall
        values. ``R x`` is formed from products with the one shared ``D2`` (cheap), so only
        ``A^-1`` is stored per mode: temperature, then the mean flow ``U`` (in mode 0 of the
        streamfunction block) and the streamfunction, ``(2K, ny, ny)``, applied in one batched
        product.
        """
        p = self.params
        ny = p.ny
        eye = np.eye(ny)
        f64 = torch.float64
        bc_psi = [0, 1, ny - 2, ny - 1]
        stacked = []
        for beta in _BETA:
            a0 = 1.0 / (beta * p.dt)
            ops = np.zeros((2 * len(k), ny, ny))
            for i, kk in enumerate(k):
                lap = d2 - kk * kk * eye
                a_t = a0 * eye - p.kappa * lap
                a_t[0], a_t[-1] = eye[0], eye[-1]
                ops[i] = np.linalg.inv(a_t)
                if kk == 0.0:                   # the mean flow U: no-slip, no pressure gradient
                    a_u = a0 * eye - p.nu * d2
                    a_u[0], a_u[-1] = eye[0], eye[-1]
                    ops[len(k)] = np.linalg.inv(a_u)
                    continue
                a_p = (a0 * eye - p.nu * lap) @ lap
                a_p[0], a_p[1], a_p[-2], a_p[-1] = eye[0], d1[0], d1[-1], eye[-1]
                ops[len(k) + i] = _stable_inverse(a_p)
            stacked.append(torch.as_tensor(ops, dtype=f64, device=self.device))
        self._ops = stacked
        self._bc_rows_psi = bc_psi
        c128 = torch.complex128
        k2 = k * k
        self._coef_a = [torch.as_tensor(np.concatenate((1.0 / (b * p.dt) - p.kappa * k2,
                                                        1.0 / (b * p.dt) - p.nu * k2)),
                                        dtype=c128, device=self.device) for b in _BETA]
        self._coef_c = torch.as_tensor(np.concatenate((np.full(len(k), p.kappa),
                                                       np.full(len(k), p.nu))),
                                       dtype=c128, device=self.device)
        mask = np.ones((ny, 2 * len(k)))
        mask[[0, -1], : len(k)] = 0.0                  # temperature: Dirichlet rows
        mask[np.ix_(np.array(bc_psi), np.arange(len(k), 2 * len(k)))] = 0.0   # psi = dpsi/dy = 0
        mask[[1, -2], len(k)] = 1.0                    # U: Dirichlet rows only
        self._row_mask = torch.as_tensor(mask, dtype=f64, device=self.device)
        self._d12 = torch.as_tensor(np.vstack((d1, d2)), dtype=f64, device=self.device)
        self._d2 = torch.as_tensor(d2, dtype=f64, device=self.device)

    # ----------------------------------------------------------------------------- state
    def _zero_state(self) -> None:
        b, ny, nk = self.batch, self.params.ny, self.n_modes
        c128 = torch.complex128
        dev = self.device
        self._w = torch.zeros(b, ny, nk, dtype=c128, device=dev)   # [U | psi_1 .. psi_K-1]
        self.temp = torch.zeros(b, ny, nk, dtype=c128, device=dev)

    def conduction(self, noise: float = 0.0, seed: int | None = None) -> None:
        """Every flow at rest with the linear conduction profile (see :func:`initial_state`),
        the current bottom temperature on the bottom row."""
        self.set_state(initial_state(self.params, self.batch, "conduction", noise, seed))
        self.temp[:, -1, :] = self._bottom

    def authors_start(self, noise: float = 1e-3, seed: int | None = None) -> None:
        """The authors' initial condition (see :func:`initial_state`)."""
        self.set_state(initial_state(self.params, self.batch, "authors", noise, seed))

    def set_bottom(self, coefficients: Tensor | NDArray[np.complex128]) -> None:
        """The bottom-wall temperature's Fourier coefficients ``(batch, >= K)`` (see
        :func:`plants.rbc.model.bottom_coefficients`); applied from the next step on."""
        c = torch.as_tensor(np.asarray(coefficients) if not isinstance(coefficients, Tensor)
                            else coefficients, dtype=torch.complex128, device=self.device)
        if c.ndim != 2 or c.shape[0] != self.batch or c.shape[1] < self.n_modes:
            raise ValueError(f"bottom coefficients must have shape ({self.batch}, >= "
                             f"{self.n_modes}), got {tuple(c.shape)}")
        self._bottom = c[:, : self.n_modes].clone()
        self._walls_from_bottom()

    def _walls_from_bottom(self) -> None:
        """Wall values in the right-hand side's layout ``[T | lap psi]``: T = 1 on top (mode
        0), the bottom coefficients below; zero for the streamfunction."""
        walls = torch.zeros(self.batch, self.params.ny, 2 * self.n_modes,
                            dtype=torch.complex128, device=self.device)
        walls[:, 0, 0] = T_TOP
        walls[:, -1, : self.n_modes] = self._bottom
        self._walls = walls

    def get_state(self) -> FlowState:
        """The current state (numpy copies)."""
        return FlowState(self.psi.cpu().numpy(), self.mean_u.cpu().numpy().copy(),
                         self.temp.cpu().numpy().copy(), self.time.cpu().numpy().copy())

    def set_state(self, state: FlowState, index: Any = None) -> None:
        """Load ``state`` into all flows (``index`` None; a batch of 1 is broadcast) or into
        the flows ``index``."""
        want = (self.params.ny, self.n_modes)
        if state.psi.shape[1:] != want or state.temp.shape[1:] != want:
            raise ValueError(f"state has modes {state.psi.shape[1:]}, this solver {want}: "
                             "states move only between solvers of the same grid")
        sel = slice(None) if index is None else index
        dev = self.device
        w = torch.as_tensor(state.psi, dtype=torch.complex128, device=dev).clone()
        w[:, :, 0] = torch.as_tensor(state.mean_u, dtype=torch.complex128, device=dev)
        self._w[sel] = w
        self.temp[sel] = torch.as_tensor(state.temp, device=dev)
        self.time[sel] = torch.as_tensor(state.time, device=dev)
        self.blown_up[sel] = False

    # ----------------------------------------------------------------------------- physics
    def _to_grid(self, modes: Tensor) -> Tensor:
        """Modes ``(..., K)`` to the padded physical grid ``(..., 3 nx / 2)``."""
        return torch.fft.irfft(modes, n=self.n_pad, dim=-1, norm="forward")

    def _to_modes(self, grid: Tensor) -> Tensor:
        return torch.fft.rfft(grid, dim=-1, norm="forward")[..., : self.n_modes]

    def _dy(self, mat: Tensor, f: Tensor) -> Tensor:
        """A real ``(m, ny)`` matrix applied along y to complex modes ``(b, ny, K)``."""
        b, ny, nk = f.shape
        out = mat @ torch.view_as_real(f).reshape(b, ny, 2 * nk)
        return torch.view_as_complex(out.reshape(b, -1, nk, 2))

    def _per_mode(self, ops: Tensor, f: Tensor) -> Tensor:
        """Per-mode real matrices ``(K, m, n)`` applied to complex ``(b, n, K)``."""
        b, n, nk = f.shape
        x = torch.view_as_real(f).permute(2, 1, 0, 3).reshape(nk, n, 2 * b)
        out = torch.bmm(ops, x).reshape(nk, -1, b, 2).permute(2, 1, 0, 3).contiguous()
        return torch.view_as_complex(out)

    @property
    def psi(self) -> Tensor:
        """Streamfunction modes ``(batch, ny, K)`` (mode 0 zero: the mean flow is
        :attr:`mean_u`)."""
        out = self._w.clone()
        out[:, :, 0] = 0.0
        return out

    @property
    def mean_u(self) -> Tensor:
        """The x-mean horizontal velocity ``U(y)``, ``(batch, ny)``."""
        return self._w[:, :, 0].real.clone()

    def velocity_modes(self) -> tuple[Tensor, Tensor]:
        """``(u_hat, v_hat)``, each ``(batch, ny, K)``."""
        u = self._dy(self.d1_real, self._w)
        u[:, :, 0] = self._w[:, :, 0]
        v = -self.ik * self._w                        # mode 0: zero
        return u, v

    def _explicit(self) -> tuple[Tensor, Tensor]:
        """Advection (and buoyancy) terms and the implicit variables, in the right-hand side's
        layout ``[T | U, lap psi_1 ..]``: ``([-div(u T) | -d<uv>/dy, div(u omega) - dT/dx],
        [T | U, lap psi])``."""
        ny, nk = self.params.ny, self.n_modes
        w = self._w
        both = self._dy(self._d12, w)
        u = both[:, :ny]
        omega = self.k2 * w - both[:, ny:]                          # -lap psi (k >= 1)
        omega[:, :, 0] = -u[:, :, 0]                                # -dU/dy
        u[:, :, 0] = w[:, :, 0]                                     # U
        v = -self.ik * w
        grid = self._to_grid(torch.stack((u, v, omega, self.temp)))
        ug, vg, wg, tg = grid[0], grid[1], grid[2], grid[3]
        prods = self._to_modes(torch.stack((ug * tg, vg * tg, ug * wg, vg * wg, ug * vg)))
        # one y-derivative for d(vT)/dy, d(v omega)/dy and d<uv>/dy
        dy = self._dy(self.d1_real, torch.cat((prods[1], prods[3], prods[4][:, :, :1]), dim=-1))
        adv = torch.cat((-(self.ik * prods[0] + dy[:, :, :nk]),
                         self.ik * (prods[2] - self.temp) + dy[:, :, nk:2 * nk]), dim=-1)
        adv[:, :, nk] = -dy[:, :, 2 * nk]
        phi = -omega
        phi[:, :, 0] = w[:, :, 0]
        return adv, torch.cat((self.temp, phi), dim=-1)

    def step(self, n: int = 1) -> None:
        """Advance every flow by ``n`` steps of ``dt``."""
        for _ in range(int(n)):
            self._last = (self._w, self.temp)
            self._step_once()

    def _step_once(self) -> None:
        nk = self.n_modes
        prev: Tensor | None = None
        for stage in range(3):
            adv, x = self._explicit()
            e = _GAMMA[stage] / _BETA[stage] * adv
            if prev is not None:
                e = e + _ZETA[stage - 1] / _BETA[stage] * prev
            prev = adv
            # R x = a0 x + c (D2 x - k^2 x), one shared D2 product; the wall rows carry the
            # wall values
            rhs = self._coef_a[stage] * x + self._coef_c * self._dy(self._d2, x) + e
            new = self._per_mode(self._ops[stage], rhs * self._row_mask + self._walls)
            self.temp = new[:, :, :nk]
            self._w = new[:, :, nk:]
        self._commit()

    def _commit(self) -> None:
        """Flag flows that blew up and put them back to their state before the step."""
        self.steps += 1
        # |u(x, y)| <= |U(y)| + 2 sum_k |u_k(y)| (and the same for v): a bound of the
        # physical speed on every row, never below it
        du = self._dy(self.d1_real, self._w).abs()
        bound_u = self._w[:, :, 0].abs() + 2.0 * du[:, :, 1:].sum(dim=-1)
        bound_v = 2.0 * (self.k[1:] * self._w[:, :, 1:].abs()).sum(dim=-1)
        vmax = torch.maximum(bound_u, bound_v).amax(dim=1)
        bad = ~torch.isfinite(vmax) | (vmax > self.blowup) | self.blown_up
        if bool(bad.any()):
            keep = ~bad
            self.blown_up |= bad
            old_w, old_t = self._last
            self._w = torch.where(keep[:, None, None], self._w, old_w)
            self.temp = torch.where(keep[:, None, None], self.temp, old_t)
        self.time = self.time + (~self.blown_up).to(torch.float64) * self.params.dt

    # ----------------------------------------------------------------------------- outputs
    def fields(self, x: NDArray[np.float64] | None = None,
               y: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
        """``(u, v, T)`` on a grid, ``(batch, 3, len(y), len(x))``: ``x`` defaults to the
        ``nx`` uniform points, ``y`` to the solver's Chebyshev points (top first); other
        points are evaluated spectrally (exact interpolation)."""
        xs = np.arange(self.params.nx) * 2 * np.pi / self.params.nx if x is None else x
        u, v = self.velocity_modes()
        modes = torch.stack((u, v, self.temp), dim=1)                # (b, 3, ny, K)
        if y is not None:
            rows = torch.as_tensor(cheb_interp_matrix(self.params.ny, np.asarray(y)),
                                   dtype=torch.complex128, device=self.device)
            modes = rows @ modes
        k = np.arange(self.n_modes)
        weight = np.where(k == 0, 1.0, 2.0)
        basis = torch.as_tensor(weight[:, None] * np.exp(1j * np.outer(k, xs)),
                                dtype=torch.complex128, device=self.device)   # (K, nx)
        out = (modes @ basis).real
        arr: NDArray[np.float64] = out.cpu().numpy()
        return arr

    def nusselt(self) -> dict[str, NDArray[np.float64]]:
        """Physical Nusselt numbers per flow: wall heat flux over the conductive flux
        ``kappa Delta T / H`` at the bottom and top walls, and the volume average
        ``1 + <v T> / (kappa Delta T / H)`` (all equal at a steady state)."""
        p = self.params
        dtdy = (self.d1_real @ self.temp[:, :, 0].real[..., None])[..., 0]   # (b, ny)
        cond = (T_BOTTOM_MEAN - T_TOP) / 2.0
        bottom = -dtdy[:, -1] / cond
        top = -dtdy[:, 0] / cond
        _, v = self.velocity_modes()
        vt = (v * self.temp.conj()).real                                 # mode products
        vt_mean = vt[:, :, 0] + 2.0 * vt[:, :, 1:].sum(dim=-1)            # <vT>_x per y
        w = torch.as_tensor(_clenshaw_curtis(p.ny), device=self.device)
        vol = 1.0 + (vt_mean @ w) / 2.0 / (p.kappa * cond)
        return {"bottom": bottom.cpu().numpy(), "top": top.cpu().numpy(),
                "volume": vol.cpu().numpy()}

    def divergence(self) -> float:
        """Largest ``|du/dx + dv/dy|`` over the modes of every flow (round-off)."""
        u, v = self.velocity_modes()
        div = self.ik * u + self.d1 @ v
        return float(div.abs().max())


def initial_state(params: RBCParams, batch: int = 1, kind: str = "authors",
                  noise: float = 1e-3, seed: int | None = None) -> FlowState:
    """A start at rest, without building a solver.

    ``"conduction"``: ``T = 1.5 - y/2`` (2 at the bottom, 1 at the top); ``"authors"``: the
    authors' ``initialize``, ``T = 1.5 - y/2 + 0.125 sin(pi y)``. Both plus Gaussian noise of
    std ``noise`` times ``(1 - y)(1 + y)`` on the grid (different per flow, reproducible per
    ``seed``).
    """
    if kind not in ("authors", "conduction"):
        raise ValueError(f"kind = {kind!r}; valid: 'authors', 'conduction'")
    y = cheb_points(params.ny)
    nk = params.nx // 2
    temp = np.zeros((batch, params.ny, nk), dtype=np.complex128)
    temp[:, :, 0] = T_TOP + (T_BOTTOM_MEAN - T_TOP) * (1.0 - y) / 2.0
    if kind == "authors":
        temp[:, :, 0] += 0.125 * np.sin(np.pi * y)
    if noise > 0.0:
        field = np.random.default_rng(seed).standard_normal((batch, params.ny, params.nx)) * noise
        field *= ((1.0 - y) * (1.0 + y))[None, :, None]
        temp += np.fft.rfft(field, axis=-1, norm="forward")[..., :nk]
    return FlowState(np.zeros_like(temp), np.zeros((batch, params.ny)), temp, np.zeros(batch))


_GAMMA = (8.0 / 15.0, 5.0 / 12.0, 3.0 / 4.0)
_ZETA = (-17.0 / 60.0, -5.0 / 12.0)
_BETA = (4.0 / 15.0, 1.0 / 15.0, 1.0 / 6.0)
"""Spalart–Moser–Rogers IMEX RK3 weights (alpha = beta)."""


def _stable_inverse(m: NDArray[np.float64]) -> NDArray[np.float64]:
    """Inverse of a badly scaled matrix by row/column equilibration."""
    r = 1.0 / np.abs(m).max(axis=1)
    ms = m * r[:, None]
    c = 1.0 / np.abs(ms).max(axis=0)
    inv = np.linalg.inv(ms * c[None, :])
    out: NDArray[np.float64] = (c[:, None] * inv) * r[None, :]
    return out


def _clenshaw_curtis(n: int) -> NDArray[np.float64]:
    """Clenshaw–Curtis quadrature weights on the ``n`` Gauss–Lobatto points over [-1, 1]."""
    nn = n - 1
    theta = np.pi * np.arange(n) / nn
    w = np.zeros(n)
    v = np.ones(nn - 1)
    if nn % 2 == 0:
        w[0] = w[-1] = 1.0 / (nn * nn - 1)
        for j in range(1, nn // 2):
            v -= 2.0 * np.cos(2 * j * theta[1:-1]) / (4 * j * j - 1)
        v -= np.cos(nn * theta[1:-1]) / (nn * nn - 1)
    else:
        w[0] = w[-1] = 1.0 / (nn * nn)
        for j in range(1, (nn - 1) // 2 + 1):
            v -= 2.0 * np.cos(2 * j * theta[1:-1]) / (4 * j * j - 1)
    w[1:-1] = 2.0 * v / nn
    return w
