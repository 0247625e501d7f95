"""Generic nonlinear MPC on a plant's ``model()`` (registry name ``"mpc"``).

Every control step solves the multiple-shooting NLP of :mod:`controllers.mpc_ocp` (RK4 over the
plant's period, IPOPT, silent) and applies the first input of the plan.

What it reads from the plant (through :func:`~ctrlbench.plant.signals_of`, never mutating it):

- **State estimate.** The model's states must be observed under the same names (the motor,
  mass-spring-damper and crystallizer plants observe them); the measured values are taken as the
  exact state (no observer, no noise filter). A plant whose observation lacks a model state is
  refused with :class:`~ctrlbench.capabilities.NotApplicableError` naming the missing states.
- **References.** Every observation signal with ``tracks=`` is a set-point for the model state or
  model output of that name (a state wins when both exist), held constant over the horizon.
- **Constraints.** Hard input bounds: the intersection of the action signals' and the model
  inputs' bounds. Hard input-rate bounds: ``max_move`` and/or the plant's ``action_rate_limit``
  attribute, both read as the largest change of each action entry per control step (action units);
  the tighter one wins. Moves are measured from the input the plant applied last: an observation
  signal named ``<input>_applied`` (the crystallizer's ``T_j_applied``) is read as the input
  applied over the last period (clipped to the input bounds widened by one move, so the NLP stays
  feasible); without one, from the controller's own last command, and the first move of an
  episode is free.
  Soft bounds (L1 slack penalty, so the NLP stays feasible) on every model state and output with a
  finite bound, each moved inward by ``bound_margin`` times its own magnitude.
- **Time.** The shooting interval is the plant's ``dt`` in the model's time unit (the
  :class:`~ctrlbench.plant.Plant` contract: ``dt`` is in seconds or the model's time unit; the
  crystallizer's model declares ``meta["time_unit"] = "s"`` and ``dt = 600``).

Cost (Bryson scaling by each signal's bound, ``max(|low|, |high|)``, or 1 when unbounded): tracking
``q_track`` on each reference error, ``q_terminal`` times that at the last stage, ``r_move`` on
each input move (the first one measured from the applied input), and with ``terminal="lqr"`` the
LQR cost-to-go of :mod:`controllers.mpc_terminal`. Moves rather than inputs are penalised, so a
constant set-point is tracked without offset when the model is exact. A rate limit needs a horizon
long enough to reverse the input (``horizon * max_move`` of the order of the input range).

Warm start: each solve starts from the previous primal-dual solution shifted by one interval.
**Failure:** when IPOPT does not report success (infeasible, iteration limit, evaluation error,
non-finite result; a non-finite Hessian is first retried with a quasi-Newton Hessian), the
controller applies the next input of the last successful plan (shifted once per failed step; its
last input is held once the plan runs out; the previous input, or the operating-point input, when
no plan exists yet), counts it in :attr:`NMPC.failures` and says so in :attr:`NMPC.last_info`
(``success=False``, ``fallback``). It never raises for a failed solve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from controllers.mpc_ocp import Bound, OCPResult, ShootingOCP, Tracked
from controllers.mpc_terminal import TerminalDesign, design_terminal
from ctrlbench.capabilities import NotApplicableError
from ctrlbench.controller import FeedbackController
from ctrlbench.model import PlantModel
from ctrlbench.options import OptionError, Options, option
from ctrlbench.plant import plant_dt, signals_of
from ctrlbench.signals import SignalSpec

__all__ = ["APPLIED_SUFFIX", "NMPC", "MPCOptions", "auto_substeps", "make_mpc"]

FloatArray = NDArray[np.float64]

#: An observation signal named ``<input>`` + this is the input the plant applied last period.
APPLIED_SUFFIX = "_applied"
#: RK4 step length target for :func:`auto_substeps`: ``h * max|eig(A)| <= this``.
RK4_STEP_TARGET = 0.5
#: Upper limit of automatically chosen RK4 substeps.
MAX_AUTO_SUBSTEPS = 50


@dataclass(frozen=True)
class MPCOptions(Options):
    """Settings of the NMPC (weights are Bryson-scaled by each signal's bound)."""

    label = "controller 'mpc'"
    horizon: int = option(10, "prediction horizon N [control periods]", ge=1, le=200)
    substeps: int | None = option(
        None, "RK4 pieces per control period; None = from the model's fastest eigenvalue",
        ge=1, le=200)
    q_track: float = option(1.0, "weight on the scaled tracking error", gt=0, le=1e8)
    track_weights: tuple[float, ...] | None = option(
        None, "per-reference multipliers of q_track, in observation order; None = all ones",
        ge=0, le=1e8)
    q_terminal: float = option(1.0, "multiplier of the tracking weight at the last stage",
                               ge=0, le=1e6)
    r_move: float = option(1e-4, "weight on the scaled input moves u_k - u_(k-1)", ge=0, le=1e8)
    max_move: tuple[float, ...] | None = option(
        None, "largest input change per control step (one value or one per input, action units);"
        " None = only the plant's action_rate_limit", gt=0, le=1e12)
    slack_penalty: float = option(
        1e3, "L1 penalty on the scaled violation of soft state/output bounds", gt=0, le=1e10)
    bound_margin: float = option(
        0.02, "move each finite soft state/output bound inward by this fraction of its value",
        ge=0, lt=0.5)
    max_iter: int = option(100, "IPOPT iteration limit per solve (reaching it is a failure)",
                           ge=1, le=10_000)
    tol: float = option(1e-8, "IPOPT convergence tolerance", ge=1e-14, le=1e-2)
    warm_start: bool = option(
        True, "start each solve from the shifted previous solution (False: a cold start)")
    terminal: Literal["none", "lqr"] = option(
        "none", "terminal cost: 'lqr' adds the LQR cost-to-go of the linearized model around "
        "the reference's steady state (for short horizons on slow plants)",
        choices=("none", "lqr"))


def auto_substeps(model: PlantModel, dt: float) -> int:
    """RK4 substeps so that ``h max|eig(A)| <= RK4_STEP_TARGET`` with ``h = dt / substeps``.

    ``A`` is the Jacobian at the model's operating point, or at the origin clipped into the state
    and input bounds when it declares none; capped at :data:`MAX_AUTO_SUBSTEPS` (4 when the
    Jacobian is not finite there).

    Parameters
    ----------
    model:
        The plant model.
    dt:
        Control period in the model's time unit.
    """
    x0, u0 = _linearization_point(model)
    try:
        a = model.linearize(x0, u0)[0]
        rho = float(np.max(np.abs(np.linalg.eigvals(a))))
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return 4
    if not math.isfinite(rho):
        return 4
    return int(min(MAX_AUTO_SUBSTEPS, max(1, math.ceil(dt * rho / RK4_STEP_TARGET))))


def _linearization_point(model: PlantModel) -> tuple[FloatArray, FloatArray]:
    """The model's operating point, else the origin clipped into the state and input bounds."""
    if model.x_op is not None and model.u_op is not None:
        return model.operating_point()
    x0 = np.clip(0.0, [s.low for s in model.states], [s.high for s in model.states])
    u0 = np.clip(0.0, [s.low for s in model.inputs], [s.high for s in model.inputs])
    return np.asarray(x0, float), np.asarray(u0, float)


def _magnitude(low: float, high: float, default: float = 1.0) -> float:
    """Bryson scale of a bounded signal: ``max(|low|, |high|)`` over the finite bounds."""
    finite = [abs(v) for v in (low, high) if math.isfinite(v)]
    m = max(finite) if finite else 0.0
    return m if m > 0 else default


class NMPC(FeedbackController):
    """Receding-horizon controller around a :class:`~controllers.mpc_ocp.ShootingOCP`.

    Attributes
    ----------
    ocp:
        The NLP (built once).
    last_info:
        Facts of the latest step: ``status`` (IPOPT's), ``success``, ``iterations``,
        ``solve_time`` (s), ``cost``, ``fallback`` (``""``, ``"shifted plan"`` or
        ``"held input"``), ``failures`` (so far this episode).
    failures:
        Failed solves since :meth:`reset`.
    solves:
        Solves since :meth:`reset`.
    prediction:
        ``(X, U)`` of the latest successful solve: predicted states ``(N+1, nx)`` from the
        measured one and planned inputs ``(N, nu)``, physical units (``None`` before one).

    Parameters
    ----------
    dt:
        Control period (model time unit).
    ocp:
        The optimal control problem.
    state_index:
        Observation positions of the model states (model order).
    reference_index:
        Observation positions of the references (the OCP's tracked order).
    u_low, u_high:
        Hard action bounds (the applied action is clipped to them).
    u_rest:
        Input used before any plan exists (operating-point input clipped into the bounds).
    q, m:
        Tracking weights per reference and move weights per input (Bryson scaling included).
    q_terminal, slack_penalty:
        Terminal multiplier and soft-bound penalty.
    warm_start:
        Start from the shifted previous solution.
    terminal:
        LQR terminal cost and steady-state targets (``None``: no terminal cost-to-go).
    applied_index:
        Observation positions of the inputs the plant applied over the last period (model
        order), or ``None`` when the plant does not observe them.
    max_move:
        Largest move per step and input (widens the bounds the applied input is clipped to).
    """

    def __init__(self, dt: float, ocp: ShootingOCP, state_index: tuple[int, ...],
                 reference_index: tuple[int, ...], u_low: FloatArray, u_high: FloatArray,
                 u_rest: FloatArray, q: FloatArray, m: FloatArray, q_terminal: float,
                 slack_penalty: float, warm_start: bool = True,
                 terminal: TerminalDesign | None = None,
                 applied_index: tuple[int, ...] | None = None,
                 max_move: FloatArray | None = None) -> None:
        super().__init__(dt)
        self.ocp = ocp
        self._sidx, self._ridx = np.asarray(state_index), np.asarray(reference_index)
        self._u_low, self._u_high = np.asarray(u_low, float), np.asarray(u_high, float)
        self._u_rest = np.asarray(u_rest, float)
        self._q, self._m = np.asarray(q, float), np.asarray(m, float)
        self._q_terminal, self._rho = float(q_terminal), float(slack_penalty)
        self.warm_start = bool(warm_start)
        self.terminal = terminal
        self._aidx = None if applied_index is None else np.asarray(applied_index, dtype=int)
        reach = np.zeros_like(self._u_low) if max_move is None else np.asarray(max_move, float)
        self._applied_low, self._applied_high = self._u_low - reach, self._u_high + reach
        self.reset()

    def reset(self) -> None:
        """Forget the previous plan, input and counters (start of an episode)."""
        self._w: FloatArray | None = None  # last successful solution, shifted to "now"
        self._lam: tuple[FloatArray, FloatArray] | None = None
        self._plan: FloatArray | None = None  # inputs of that plan from "now" on
        self._u_prev: FloatArray | None = None
        self.failures = 0
        self.solves = 0
        self.last_info: dict[str, Any] = {}
        self.prediction: tuple[FloatArray, FloatArray] | None = None

    @property
    def plan(self) -> FloatArray | None:
        """Inputs of the current plan from this step on, shape ``(N, nu)`` (``None`` before the
        first successful solve); after a failed solve, the previous plan shifted."""
        return None if self._plan is None else self._plan.copy()

    def nlp_parameters(self, observation: FloatArray) -> FloatArray:
        """The NLP parameter vector :meth:`compute` would solve with for ``observation`` now
        (measured state, references, previous input, weights, terminal data)."""
        return self._parameters(observation)[0]

    def previous_input(self, observation: FloatArray) -> FloatArray | None:
        """The input the next move starts from: the applied one when the plant observes it
        (clipped to the bounds widened by one move), else this controller's last command."""
        if self._aidx is None:
            return self._u_prev
        applied = np.asarray(observation[self._aidx], dtype=float)
        return np.clip(applied, self._applied_low, self._applied_high)

    def _parameters(self, observation: FloatArray
                    ) -> tuple[FloatArray, FloatArray, FloatArray | None]:
        """``(p, u_start, u_prev)``: NLP parameters, the input to start from without a plan and
        the previous input (``None``: unknown, the first move is free)."""
        x = np.asarray(observation[self._sidx], dtype=float)
        ref = np.asarray(observation[self._ridx], dtype=float)
        u_prev = self.previous_input(observation)
        term, u_start = None, self._u_rest
        if self.terminal is not None:
            x_s, u_s = self.terminal.target(ref)
            term, u_start = (self.terminal.p, x_s, u_s), np.clip(u_s, self._u_low, self._u_high)
        p = self.ocp.parameters(x, ref, u_prev, self._q, self._m, self._q_terminal,
                                self._rho, term)
        return p, u_start, u_prev

    def compute(self, observation: FloatArray) -> FloatArray:
        """Solve the OCP from the observed state and apply the first input of the plan."""
        x = np.asarray(observation[self._sidx], dtype=float)
        ocp = self.ocp
        p, u_start, u_prev = self._parameters(observation)
        if self.warm_start and self._w is not None and self._lam is not None:
            res = ocp.solve(p, self._w, *self._lam, free_first_move=u_prev is None, warm=True)
        else:
            guess = ocp.guess(x, u_start if u_prev is None else
                              np.clip(u_prev, self._u_low, self._u_high))
            res = ocp.solve(p, guess, free_first_move=u_prev is None)
        self.solves += 1
        fallback = self._advance(res)
        if self._plan is not None:
            u = self._plan[0]
        else:  # no plan yet: hold the previous input, or start from the rest input
            u = u_start if u_prev is None else u_prev
        u = np.clip(u, self._u_low, self._u_high)
        self._u_prev = u
        self.last_info = {
            "status": res.status, "success": res.success, "iterations": res.iterations,
            "solve_time": res.solve_time, "cost": res.cost, "hessian": res.hessian,
            "fallback": fallback, "failures": self.failures,
        }
        return u

    def _advance(self, res: OCPResult) -> str:
        """Take a successful plan, or fall back to the previous one shifted; the fallback used."""
        ocp = self.ocp
        if res.success:
            self.prediction = ocp.split(res.w)
            self._plan = self.prediction[1]
            self._w = ocp.shift(res.w)
            self._lam = ocp.shift_multipliers(res.lam_x, res.lam_g)
            return ""
        self.failures += 1
        if self._plan is None:
            return "held input"
        self._plan = np.vstack([self._plan[1:], self._plan[-1:]])  # one interval on
        if self._w is not None and self._lam is not None:
            self._w = ocp.shift(self._w)
            self._lam = ocp.shift_multipliers(*self._lam)
        return "shifted plan"


# -- factory --------------------------------------------------------------------------------------
def _plant_rate_limit(plant: Any, nu: int) -> FloatArray | None:
    """The plant's declared ``action_rate_limit`` (per step, action units) as ``nu`` values."""
    try:
        declared = plant.get_wrapper_attr("action_rate_limit")
    except AttributeError:
        return None
    if declared is None:
        return None
    return _per_input(declared, nu, "the plant's action_rate_limit")


def _per_input(values: Any, nu: int, what: str) -> FloatArray:
    """``values`` (one number or one per input) as ``nu`` positive floats, else OptionError."""
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=float)).ravel()
    except (TypeError, ValueError):
        arr = np.array([np.nan])
    if arr.size == 1:
        arr = np.full(nu, float(arr[0]))
    if arr.shape != (nu,) or not np.all(arr > 0):
        raise OptionError(f"{what} = {values!r} needs one positive value or {nu} (one per "
                          f"input)")
    return arr


def _tracked(obs: tuple[SignalSpec, ...], model: PlantModel
             ) -> tuple[list[Tracked], tuple[int, ...]]:
    states, outputs = [s.name for s in model.states], [s.name for s in model.outputs]
    by_name = {s.name: s for s in obs}
    tracked, ref_index, unknown = [], [], []
    for i, s in enumerate(obs):
        if s.tracks is None:
            continue
        if s.tracks in states:
            kind, j, spec = "state", states.index(s.tracks), model.states[states.index(s.tracks)]
        elif s.tracks in outputs:
            kind, j = "output", outputs.index(s.tracks)
            spec = model.outputs[j]
        else:
            unknown.append(s.tracks)
            continue
        seen = by_name.get(s.tracks, spec)
        scale = _magnitude(seen.low, seen.high, _magnitude(spec.low, spec.high))
        tracked.append(Tracked(s.tracks, kind, j, scale))  # type: ignore[arg-type]
        ref_index.append(i)
    if unknown:
        raise NotApplicableError(
            f"controller 'mpc': references track {unknown}, which are neither states {states} "
            f"nor outputs {outputs} of model {model.name!r}")
    if not tracked:
        raise NotApplicableError("controller 'mpc' needs a reference that tracks a model signal")
    return tracked, tuple(ref_index)


def _soft_bounds(model: PlantModel, x_scale: FloatArray, margin: float) -> list[Bound]:
    """Soft bounds on every state and output with a finite bound (an output that repeats a
    state with the same bounds is skipped); each finite bound moves inward by ``margin`` times
    its own magnitude (a bound at 0 stays; a range too narrow for that is not tightened)."""
    states = {s.name: s for s in model.states}
    specs: list[tuple[str, int, SignalSpec]] = [("state", i, s) for i, s in enumerate(model.states)]
    for i, s in enumerate(model.outputs):
        twin = states.get(s.name)
        if twin is None or (twin.low, twin.high) != (s.low, s.high):
            specs.append(("output", i, s))
    out = []
    for kind, i, s in specs:
        if not (math.isfinite(s.low) or math.isfinite(s.high)):
            continue
        mag = _magnitude(s.low, s.high, float(x_scale[i]) if kind == "state" else 1.0)
        low, high = s.low + margin * abs(s.low), s.high - margin * abs(s.high)
        if low > high:  # no room: keep the declared bounds
            low, high = s.low, s.high
        out.append(Bound(s.name, kind, i, low, high, mag))  # type: ignore[arg-type]
    return out


def make_mpc(plant: Any, options: MPCOptions) -> NMPC:
    """NMPC on ``plant.model()`` (registry name ``"mpc"``); see the module docstring.

    Parameters
    ----------
    plant:
        A ctrlbench plant (possibly wrapped) with a ``model()`` whose states it observes by name
        and a reference that tracks a model state or output.
    options:
        Horizon, weights and solver settings (:class:`MPCOptions`).

    Raises
    ------
    NotApplicableError
        A model state is not observed, a reference tracks no model signal, or the model's input
        count differs from the action's.
    """
    model: PlantModel = plant.get_wrapper_attr("model")()
    obs, act = signals_of(plant)
    dt = plant_dt(plant)
    obs_names = {s.name for s in obs if s.tracks is None}
    missing = [s.name for s in model.states if s.name not in obs_names]
    if missing:
        raise NotApplicableError(
            f"controller 'mpc' reads the model state from the observation, but model "
            f"{model.name!r} has states {missing} that the plant does not observe")
    if len(act) != model.nu:
        raise NotApplicableError(
            f"controller 'mpc': model {model.name!r} has {model.nu} inputs, the plant "
            f"{len(act)} actions")
    all_names = [s.name for s in obs]
    state_index = tuple(all_names.index(s.name) for s in model.states)
    tracked, ref_index = _tracked(obs, model)
    u_low = np.maximum([s.low for s in act], [s.low for s in model.inputs])
    u_high = np.minimum([s.high for s in act], [s.high for s in model.inputs])
    u_scale = np.array([_magnitude(lo, hi) for lo, hi in zip(u_low, u_high)])
    x_op = np.zeros(model.nx) if model.x_op is None else np.asarray(model.x_op, float)
    x_scale = np.array([_magnitude(s.low, s.high, abs(x_op[i]) or 1.0)
                        for i, s in enumerate(model.states)])
    u_rest = np.clip(np.zeros(model.nu) if model.u_op is None else np.asarray(model.u_op),
                     u_low, u_high)
    moves = [_plant_rate_limit(plant, model.nu)]
    if options.max_move is not None:
        moves.append(_per_input(options.max_move, model.nu, f"{options.label}.max_move"))
    given = [mv for mv in moves if mv is not None]
    max_move = np.minimum.reduce(given) if given else None
    substeps = options.substeps or auto_substeps(model, dt)
    ocp = ShootingOCP(model, dt, options.horizon, substeps, tracked,
                      _soft_bounds(model, x_scale, options.bound_margin), x_scale, u_scale,
                      u_low, u_high, max_move, max_iter=options.max_iter, tol=options.tol)
    weights = np.ones(len(tracked)) if options.track_weights is None else np.asarray(
        options.track_weights, float)
    if weights.shape != (len(tracked),):
        raise OptionError(f"{options.label}.track_weights = {options.track_weights} needs "
                          f"{len(tracked)} entries (one per reference)")
    q, m = options.q_track * weights, np.full(model.nu, options.r_move)
    terminal = None
    if options.terminal == "lqr":
        terminal = design_terminal(model, ocp.phi, tracked, x_scale, u_scale, q, m,
                                   *_linearization_point(model))
    measured_names = [s.name if s.tracks is None else None for s in obs]
    applied = [f"{s.name}{APPLIED_SUFFIX}" for s in model.inputs]
    applied_index = None
    if all(name in measured_names for name in applied):
        applied_index = tuple(measured_names.index(name) for name in applied)
    return NMPC(dt, ocp, state_index, ref_index, u_low, u_high, u_rest, q, m,
                options.q_terminal, options.slack_penalty, options.warm_start, terminal,
                applied_index, max_move)
