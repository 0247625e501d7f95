"""The optimal control problem behind ``"mpc"``: a casadi NLP by multiple shooting, solved by IPOPT.

:class:`ShootingOCP` turns a :class:`~ctrlbench.model.PlantModel` into one parametric NLP, built
once and solved every control step with new parameters (measured state, references, last input,
weights). Everything here is plant-agnostic; :mod:`controllers.mpc` reads the plant and runs the
receding horizon.

Problem (decision variables scaled by ``x_scale``/``u_scale``; ``k`` counts control periods of
length ``dt``, in the model's time unit)::

    min   sum_{k=1..N} w_k sum_j q_j ((y_kj - r_j) / s_j)^2            tracking, w_N = q_terminal
        + sum_{k=0..N-1} sum_i m_i ((u_ki - u_(k-1)i) / su_i)^2        input moves (u_-1 = u_prev)
        + rho sum eps                                                  soft-bound slack (L1)
        + xi' P xi,  xi = [(x_N - x_s) / sx; (u_(N-1) - u_s) / su]     terminal (P = 0: none)
    s.t.  x_0 = x_meas
          x_(k+1) = Phi(x_k, u_k)                   RK4, ``substeps`` pieces per interval
          u_low <= u_k <= u_high                    hard
          |u_k - u_(k-1)| <= max_move               hard, optional (the k = 0 row only when
                                                    u_prev is known)
          lo - eps_kb <= z_kb <= hi + eps_kb,  eps >= 0    soft bounds on states/outputs, k >= 1

``y_kj`` is a model state or ``h(x_k, u_(k-1))`` (the output with the input that led to it).
All weights, the references, the measured state and the terminal data are NLP parameters, so
one NLP serves every step. One interval is a casadi ``Function`` mapped over the horizon.

Integrator: RK4 over an SX graph rather than casadi's CVODES/IDAS ``integrator``: for the small
models here (2-7 states) the expanded SX NLP has exact, cheap first and second derivatives and
no sensitivity integrations per IPOPT iteration (PMSM, N = 10: ~1.5 ms per warm solve, of which
~0.1 ms are function evaluations; the rest is IPOPT itself).

Solvers (IPOPT, silent, :meth:`ShootingOCP.solver_for`): a *cold* one with IPOPT's default
initialisation, a *warm* one (``warm_start_init_point``, ``mu_init = 1e-6``, bound pushes 1e-9)
fed the shifted previous primal-dual solution, and their *quasi-Newton* twins (L-BFGS Hessian)
that repeat a solve whose exact second derivatives were not finite (``Invalid_Number_Detected``:
e.g. the crystallizer's ``(S - 1)^1.05`` kinetics below saturation; the failed attempt stops at
its first evaluation, ~1.5 ms there). When the constraints are linear and the cost
quadratic (``casadi.is_linear``/``is_quadratic``: the motor and spring models), IPOPT is told the
Jacobian and Hessian are constant.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import casadi as ca
import numpy as np
from numpy.typing import NDArray

from ctrlbench.model import PlantModel

__all__ = ["Bound", "OCPResult", "ShootingOCP", "Tracked", "rk4_step"]

FloatArray = NDArray[np.float64]

#: IPOPT return statuses taken as a solved problem.
SUCCESS = ("Solve_Succeeded", "Solved_To_Acceptable_Level")
#: Statuses after which a solve is repeated with a quasi-Newton Hessian.
RETRY_STATUSES = ("Invalid_Number_Detected",)


@dataclass(frozen=True)
class Tracked:
    """One tracked model signal.

    Parameters
    ----------
    name:
        Signal name.
    kind:
        ``"state"`` (an entry of ``x``) or ``"output"`` (an entry of ``h(x, u)``).
    index:
        Position in ``x`` or ``y``.
    scale:
        Bryson scale of the tracking error (the largest acceptable error magnitude).
    """

    name: str
    kind: Literal["state", "output"]
    index: int
    scale: float


@dataclass(frozen=True)
class Bound:
    """A soft bound ``low <= z <= high`` on a model state or output (one side may be infinite).

    Parameters
    ----------
    name:
        Signal name.
    kind:
        ``"state"`` or ``"output"``.
    index:
        Position in ``x`` or ``y``.
    low, high:
        The bounds (``-inf``/``inf`` for none).
    scale:
        Magnitude used to scale the constraint and its slack.
    """

    name: str
    kind: Literal["state", "output"]
    index: int
    low: float
    high: float
    scale: float


@dataclass(frozen=True)
class OCPResult:
    """One solve.

    Parameters
    ----------
    w:
        The (scaled) decision vector IPOPT returned.
    lam_x, lam_g:
        Multipliers of the variable bounds and of the constraints.
    status:
        IPOPT's return status (or the exception text for an evaluation error).
    success:
        ``status`` is in :data:`SUCCESS` and the result is finite.
    iterations:
        IPOPT iterations.
    solve_time:
        Wall time of the solver call (s).
    cost:
        Objective at ``w``.
    hessian:
        ``"exact"``, or ``"limited-memory"`` when the exact-Hessian solve hit a non-finite
        value and was repeated with a quasi-Newton Hessian (then ``iterations`` and
        ``solve_time`` cover both attempts).
    """

    w: FloatArray
    lam_x: FloatArray
    lam_g: FloatArray
    status: str
    success: bool
    iterations: int
    solve_time: float
    cost: float
    hessian: str = "exact"


def _up(block: FloatArray, width: int) -> FloatArray:
    """Stage-major ``block`` (``width`` entries per stage) moved up one stage, last repeated."""
    if width == 0 or block.size == 0:
        return block
    b = block.reshape(-1, width)
    return np.vstack([b[1:], b[-1:]]).ravel()


def rk4_step(f: Any, dt: float, substeps: int) -> Any:
    """A casadi ``Function`` ``(x, u) -> x(t + dt)``: classic RK4 in ``substeps`` pieces (ZOH u).

    Parameters
    ----------
    f:
        ``F(x, u) -> dx`` from :meth:`~ctrlbench.model.PlantModel.casadi_functions`.
    dt:
        Interval length, in the model's time unit.
    substeps:
        RK4 pieces per interval (>= 1).
    """
    nx, nu = f.size1_in(0), f.size1_in(1)
    x, u = ca.SX.sym("x", nx), ca.SX.sym("u", nu)
    h = dt / substeps
    xk = x
    for _ in range(substeps):
        k1 = f(xk, u)
        k2 = f(xk + 0.5 * h * k1, u)
        k3 = f(xk + 0.5 * h * k2, u)
        k4 = f(xk + h * k3, u)
        xk = xk + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return ca.Function("phi", [x, u], [xk], ["x", "u"], ["x_next"])


class ShootingOCP:
    """Multiple-shooting NLP of a tracking NMPC, built once, solved with new parameters.

    Parameters
    ----------
    model:
        The plant model (``casadi_functions()`` gives the dynamics and output).
    dt:
        Shooting interval = control period, in the model's time unit.
    horizon:
        Number of intervals ``N``.
    substeps:
        RK4 pieces per interval.
    tracked:
        Tracked signals, in reference order.
    bounds:
        Soft bounds on states/outputs (applied at ``k = 1..N``).
    x_scale, u_scale:
        Positive magnitudes that scale the decision variables (one per state / input).
    u_low, u_high:
        Hard input bounds (may be infinite).
    max_move:
        Largest ``|u_k - u_(k-1)|`` per interval, one per input (``inf`` for none), or ``None``.
    max_iter:
        IPOPT iteration limit per solve.
    tol:
        IPOPT convergence tolerance.
    ipopt_options:
        Further IPOPT options for all three solvers.

    Attributes
    ----------
    phi, h:
        The one-interval map ``Phi(x, u)`` and the output map (casadi ``Function``).
    solver:
        The cold-start exact-Hessian IPOPT solver (:meth:`solver_for` gives the others).
    cost_fn:
        ``J(w, p)``, the objective as a casadi ``Function`` (to compare solutions).
    linear, quadratic:
        Whether the constraints are linear and the cost quadratic in the decision variables.
    """

    def __init__(
        self,
        model: PlantModel,
        dt: float,
        horizon: int,
        substeps: int,
        tracked: Sequence[Tracked],
        bounds: Sequence[Bound],
        x_scale: FloatArray,
        u_scale: FloatArray,
        u_low: FloatArray,
        u_high: FloatArray,
        max_move: FloatArray | None,
        max_iter: int = 100,
        tol: float = 1e-8,
        ipopt_options: dict[str, Any] | None = None,
    ) -> None:
        nx, nu, n_ref, n_soft = model.nx, model.nu, len(tracked), len(bounds)
        n = horizon
        self.nx, self.nu, self.horizon = nx, nu, horizon
        self.x_scale, self.u_scale = np.asarray(x_scale, float), np.asarray(u_scale, float)
        self.phi = rk4_step(model.casadi_functions()[0], dt, substeps)
        self.h = model.casadi_functions()[1]
        self.dt, self.substeps = float(dt), int(substeps)
        self.tracked, self.bounds = tuple(tracked), tuple(bounds)
        self.u_low, self.u_high = np.asarray(u_low, float), np.asarray(u_high, float)
        self.max_move = None if max_move is None else np.asarray(max_move, float)
        stage, soft_lb, soft_ub = self._stage(model, tracked, bounds)
        # -- decision variables (scaled): X_0..X_N, U_0..U_(N-1), eps (n_soft x N)
        xs, us = ca.SX.sym("X", nx, n + 1), ca.SX.sym("U", nu, n)
        eps = ca.SX.sym("eps", n_soft, n)
        sx, su = ca.DM(self.x_scale), ca.DM(self.u_scale)
        xp, up = xs * ca.repmat(sx, 1, n + 1), us * ca.repmat(su, 1, n)
        # -- parameters: x_meas, r, u_prev, q, m, q_terminal, rho, first-move weight
        p_x, p_r, p_u = ca.SX.sym("x_meas", nx), ca.SX.sym("r", n_ref), ca.SX.sym("u_prev", nu)
        p_q, p_m = ca.SX.sym("q", n_ref), ca.SX.sym("m", nu)
        p_qn, p_rho, p_first = ca.SX.sym("q_n"), ca.SX.sym("rho"), ca.SX.sym("w_first")
        p_xs, p_us = ca.SX.sym("x_s", nx), ca.SX.sym("u_s", nu)
        p_pf = ca.SX.sym("P", nx + nu, nx + nu)
        params = ca.vertcat(p_x, p_r, p_u, p_q, p_m, p_qn, p_rho, p_first, p_xs, p_us,
                            ca.vec(p_pf))
        # -- all stages at once (stage k: x_k, u_k -> x_(k+1), tracking of y_(k+1), move of u_k)
        w_track = ca.horzcat(*([1.0] * (n - 1) + [p_qn]))
        w_move = ca.horzcat(*([p_first] + [1.0] * (n - 1)))
        u_before = ca.horzcat(p_u, up[:, : n - 1])
        defect, cost_k, soft, move = stage.map(n)(
            xp[:, :n], up, xp[:, 1:], u_before, eps, ca.repmat(p_r, 1, n),
            ca.repmat(p_q, 1, n), ca.repmat(p_m, 1, n), w_track, w_move)
        g = [(xp[:, 0] - p_x) / sx, ca.vec(defect), ca.vec(soft)]
        lbg = [np.zeros(nx * (n + 1)), np.tile(soft_lb, n)]
        ubg = [np.zeros(nx * (n + 1)), np.tile(soft_ub, n)]
        cost = ca.sum2(cost_k) + (p_rho * ca.sum1(ca.vec(eps)) if n_soft else 0)
        xi = ca.vertcat(xs[:, n] - p_xs / sx, us[:, n - 1] - p_us / su)
        cost += ca.bilin(p_pf, xi, xi)  # terminal cost-to-go (zero P: none)
        # rate constraints, one row per input and interval (k = 0 relative to u_prev)
        self._move_rows: slice | None = None
        if max_move is not None:
            mm = np.asarray(max_move, float) / self.u_scale
            start = nx * (n + 1) + soft_lb.size * n
            g.append(ca.vec(move))
            lbg.append(np.tile(-mm, n))
            ubg.append(np.tile(mm, n))
            self._move_rows = slice(start, start + nu)
        w = ca.vertcat(ca.vec(xs), ca.vec(us), ca.vec(eps))
        gv = ca.vertcat(*g)
        self.n_w, self.n_g, self.n_p = w.numel(), gv.numel(), params.numel()
        self._nxw, self._nuw = nx * (n + 1), nu * n
        self.n_ref, self.n_soft, self._soft_rows = n_ref, n_soft, soft_lb.size
        self.lbg, self.ubg = np.concatenate(lbg), np.concatenate(ubg)
        u_lo = np.asarray(u_low, float) / self.u_scale
        u_hi = np.asarray(u_high, float) / self.u_scale
        self.lbx = np.concatenate([np.full(self._nxw, -np.inf), np.tile(u_lo, n),
                                   np.zeros(n_soft * n)])
        self.ubx = np.concatenate([np.full(self._nxw, np.inf), np.tile(u_hi, n),
                                   np.full(n_soft * n, np.inf)])
        self.linear = bool(ca.is_linear(gv, w))
        self.quadratic = self.linear and bool(ca.is_quadratic(cost, w))
        ipopt: dict[str, Any] = {"print_level": 0, "sb": "yes", "max_iter": int(max_iter),
                                 "tol": float(tol)}
        if self.linear:  # IPOPT then evaluates the constraint Jacobian once
            ipopt.update({"jac_c_constant": "yes", "jac_d_constant": "yes"})
        if self.quadratic:
            ipopt["hessian_constant"] = "yes"
        ipopt.update(ipopt_options or {})
        self._nlp = {"x": w, "p": params, "f": cost, "g": gv}
        self._ipopt = ipopt
        self._solvers: dict[tuple[str, bool], Any] = {}
        self.solver = self.solver_for("exact", warm=False)
        self.cost_fn = ca.Function("J", [w, params], [cost])

    def _stage(self, model: PlantModel, tracked: Sequence[Tracked], bounds: Sequence[Bound]
               ) -> tuple[Any, FloatArray, FloatArray]:
        """One interval as a casadi Function, and the bounds of its soft-bound rows."""
        nx, nu, n_ref, n_soft = model.nx, model.nu, len(tracked), len(bounds)
        h = model.casadi_functions()[1]
        x, x1 = ca.SX.sym("x", nx), ca.SX.sym("x1", nx)
        u, u0 = ca.SX.sym("u", nu), ca.SX.sym("u_before", nu)
        e, r = ca.SX.sym("eps", n_soft), ca.SX.sym("r", n_ref)
        q, m = ca.SX.sym("q", n_ref), ca.SX.sym("m", nu)
        wt, wm = ca.SX.sym("w_track"), ca.SX.sym("w_move")
        sx, su = ca.DM(self.x_scale), ca.DM(self.u_scale)
        y = h(x1, u)
        z = ca.vertcat(*[x1[t.index] if t.kind == "state" else y[t.index] for t in tracked])
        err = (z - r) / ca.DM([t.scale for t in tracked])
        du = (u - u0) / su
        cost = wt * ca.dot(q, err * err) + wm * ca.dot(m, du * du)
        rows, lb, ub = [], [], []
        for i, b in enumerate(bounds):
            zb = (x1[b.index] if b.kind == "state" else y[b.index]) / b.scale
            if np.isfinite(b.low):
                rows.append(zb + e[i])
                lb.append(b.low / b.scale)
                ub.append(np.inf)
            if np.isfinite(b.high):
                rows.append(zb - e[i])
                lb.append(-np.inf)
                ub.append(b.high / b.scale)
        soft = ca.vertcat(*rows) if rows else ca.SX(0, 1)
        fn = ca.Function("stage", [x, u, x1, u0, e, r, q, m, wt, wm],
                         [(self.phi(x, u) - x1) / sx, cost, soft, du])
        return fn, np.array(lb, float), np.array(ub, float)

    def _make_solver(self, name: str, ipopt: dict[str, Any]) -> Any:
        opts: dict[str, Any] = {"print_time": False, "error_on_fail": False,
                                "show_eval_warnings": False, "ipopt": ipopt}
        return ca.nlpsol(name, "ipopt", self._nlp, opts)

    def solver_for(self, hessian: str = "exact", warm: bool = False) -> Any:
        """The IPOPT solver for a Hessian (``"exact"`` or ``"limited-memory"``) and start (built
        on first use; the cold exact one is :attr:`solver`).

        A warm solver has ``warm_start_init_point=yes``, ``mu_init=1e-6`` and bound pushes of
        1e-9, so IPOPT stays near the shifted previous solution instead of re-centring it.
        """
        key = (hessian, warm)
        if key not in self._solvers:
            ipopt = dict(self._ipopt)
            if hessian != "exact":
                ipopt.pop("hessian_constant", None)
                ipopt["hessian_approximation"] = hessian
            if warm:
                push = 1e-9
                ipopt.update({"warm_start_init_point": "yes", "mu_init": 1e-6,
                              "warm_start_bound_push": push, "warm_start_bound_frac": push,
                              "warm_start_slack_bound_push": push,
                              "warm_start_slack_bound_frac": push,
                              "warm_start_mult_bound_push": push})
            name = f"mpc_{'warm' if warm else 'cold'}_{hessian.replace('-', '_')}"
            self._solvers[key] = self._make_solver(name, ipopt)
        return self._solvers[key]

    # -- vectors ------------------------------------------------------------------------------
    def parameters(self, x_meas: FloatArray, ref: FloatArray, u_prev: FloatArray | None,
                   q: FloatArray, m: FloatArray, q_terminal: float, rho: float,
                   terminal: tuple[FloatArray, FloatArray, FloatArray] | None = None
                   ) -> FloatArray:
        """The parameter vector of one solve.

        Parameters
        ----------
        x_meas, ref:
            Measured state and references.
        u_prev:
            The applied input (``None``: the first move is free and unpenalised).
        q, m, q_terminal, rho:
            Tracking, move, terminal-multiplier and slack weights.
        terminal:
            ``(P, x_s, u_s)``: terminal weight on
            ``[(x_N - x_s)/x_scale; (u_(N-1) - u_s)/u_scale]``; ``None``: no terminal cost.
        """
        first = 0.0 if u_prev is None else 1.0
        up = np.zeros(self.nu) if u_prev is None else np.asarray(u_prev, float)
        nz = self.nx + self.nu
        if terminal is None:
            pf, xs, us = np.zeros((nz, nz)), np.zeros(self.nx), np.zeros(self.nu)
        else:
            pf, xs, us = terminal
        return np.concatenate([x_meas, ref, up, q, m, [q_terminal, rho, first], xs, us,
                               np.asarray(pf, float).ravel(order="F")])

    def split(self, w: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``(X, U)`` in physical units, shapes ``(N+1, nx)`` and ``(N, nu)``."""
        xw = np.asarray(w[: self._nxw]).reshape(self.horizon + 1, self.nx) * self.x_scale
        uw = np.asarray(w[self._nxw : self._nxw + self._nuw]).reshape(self.horizon, self.nu)
        return xw, uw * self.u_scale

    def guess(self, x_meas: FloatArray, u: FloatArray) -> FloatArray:
        """A cold initial guess: ``u`` held, the model simulated from ``x_meas``."""
        xs = [np.asarray(x_meas, float)]
        for _ in range(self.horizon):
            nxt = np.asarray(self.phi(xs[-1], u)).ravel()
            xs.append(nxt if np.all(np.isfinite(nxt)) else xs[-1])
        xw = (np.stack(xs) / self.x_scale).ravel()
        uw = np.tile(np.asarray(u, float) / self.u_scale, self.horizon)
        return np.concatenate([xw, uw, np.zeros(self.n_soft * self.horizon)])

    def shift(self, w: FloatArray) -> FloatArray:
        """``w`` advanced one interval: every stage moves up one; the last input is held and the
        new last state is the model's response to it (so the guess satisfies the dynamics)."""
        nx, nu, n = self.nx, self.nu, self.horizon
        xw = w[: self._nxw].reshape(n + 1, nx)
        uw = w[self._nxw : self._nxw + self._nuw].reshape(n, nu)
        ew = w[self._nxw + self._nuw :].reshape(n, self.n_soft)  # column-major eps
        x_end = np.asarray(self.phi(xw[-1] * self.x_scale, uw[-1] * self.u_scale)).ravel()
        x_end = x_end / self.x_scale if np.all(np.isfinite(x_end)) else xw[-1]
        return np.concatenate([np.vstack([xw[1:], x_end[None, :]]).ravel(),
                               np.vstack([uw[1:], uw[-1:]]).ravel(),
                               np.vstack([ew[1:], ew[-1:]]).ravel()])

    def shift_multipliers(self, lam_x: FloatArray, lam_g: FloatArray
                          ) -> tuple[FloatArray, FloatArray]:
        """Multipliers matching :meth:`shift`: each stage takes the next stage's values."""
        n, nx, nu, ns, rows = self.horizon, self.nx, self.nu, self.n_soft, self._soft_rows
        lx = np.concatenate([_up(part, width) for part, width in zip(
            np.split(lam_x, [self._nxw, self._nxw + self._nuw]), (nx, nu, ns))])
        cut = np.cumsum([nx, nx * n, rows * n])
        _, defect, soft, move = np.split(lam_g, cut)
        lg = np.concatenate([defect[:nx], _up(defect, nx), _up(soft, rows), _up(move, nu)])
        return lx, lg

    # -- solve --------------------------------------------------------------------------------
    def solve(self, p: FloatArray, w0: FloatArray, lam_x0: FloatArray | None = None,
              lam_g0: FloatArray | None = None, free_first_move: bool = False,
              warm: bool = False) -> OCPResult:
        """Solve once from ``w0``; never raises for a solver failure (``success`` says).

        Parameters
        ----------
        p:
            Parameter vector from :meth:`parameters`.
        w0:
            Initial guess of the (scaled) decision vector.
        lam_x0, lam_g0:
            Initial multipliers (``None``: zeros).
        free_first_move:
            Drop the rate limit on ``u_0`` (no previous input known).
        warm:
            Use the warm solvers of :meth:`solver_for` (pass the previous multipliers) instead
            of IPOPT's default cold initialisation.
        """
        lbg, ubg = self.lbg, self.ubg
        if free_first_move and self._move_rows is not None:
            lbg, ubg = lbg.copy(), ubg.copy()
            lbg[self._move_rows], ubg[self._move_rows] = -np.inf, np.inf
        args = {"x0": w0, "p": p, "lbx": self.lbx, "ubx": self.ubx, "lbg": lbg, "ubg": ubg,
                "lam_x0": np.zeros(self.n_w) if lam_x0 is None else lam_x0,
                "lam_g0": np.zeros(self.n_g) if lam_g0 is None else lam_g0}
        res = self._call(self.solver_for("exact", warm), args, "exact")
        if res.status in RETRY_STATUSES:
            # a non-finite second derivative (e.g. x**1.05 at a kink): quasi-Newton instead
            retry = self._call(self.solver_for("limited-memory", warm), args, "limited-memory")
            res = dataclasses.replace(retry, iterations=res.iterations + retry.iterations,
                                      solve_time=res.solve_time + retry.solve_time)
        return res

    def _call(self, solver: Any, args: dict[str, Any], hessian: str) -> OCPResult:
        t0 = time.perf_counter()
        try:
            sol = solver(**args)
            stats = solver.stats()
        except RuntimeError as exc:  # an evaluation error inside IPOPT's callbacks
            nan = np.full(self.n_w, np.nan)
            return OCPResult(nan, np.zeros(self.n_w), np.zeros(self.n_g), f"error: {exc}",
                             False, 0, time.perf_counter() - t0, float("nan"), hessian)
        elapsed = time.perf_counter() - t0
        status = str(stats.get("return_status", "unknown"))
        w = np.asarray(sol["x"]).ravel()
        cost = float(sol["f"])
        ok = status in SUCCESS and bool(np.all(np.isfinite(w))) and np.isfinite(cost)
        return OCPResult(w, np.asarray(sol["lam_x"]).ravel(), np.asarray(sol["lam_g"]).ravel(),
                         status, ok, int(stats.get("iter_count", 0)), elapsed, cost, hessian)
