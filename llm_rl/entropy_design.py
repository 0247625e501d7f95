"""Entropy-controller design on an identified model of the entropy dynamics.

The model is the first-order ARX fit of :mod:`llm_rl.sysid`, ``H_{k+1} = a H_k + b u_k + c``
(``u`` = bonus coefficient of step ``k``). The trainer closes the loop with one step of delay:
the controller reads ``H_k`` after step ``k``'s update and sets ``u_{k+1}``, so ``u_k`` acts on
``H_{k+1}`` and the controller's answer to ``H_k`` first shows in ``H_{k+2}``. The ``pid``
entropy controller (:class:`controllers.pid.PID`, ``dt = 1``) computes
``v_k = kp e_k + I_k`` with ``I_{k+1} = I_k + ki e_k`` (``e = H* - H``), i.e.
``C(z) = kp + ki / (z - 1)``, and the trainer applies ``u_{k+1} = v_k``.

**Pole placement** (:func:`pole_placement_pi`): with ``G(z) = b / (z - a)`` and the delay
``z^-1``, the closed loop's characteristic polynomial is

    z^3 - (1 + a) z^2 + (a + b kp) z + b (ki - kp).

Two gains cannot place three poles: the ``z^2`` coefficient fixes their sum at ``1 + a``. The
rule places a double pole at ``p = exp(-1 / tau)`` (``tau`` = the closed-loop time constant in
steps) and the third at ``p3 = 1 + a - 2 p``; matching coefficients,

    kp = (p^2 + 2 p p3 - a) / b,        ki = kp - p^2 p3 / b.

``|p3| < 1`` (``p > a / 2``) and ``kp, ki >= 0`` are required; a ``tau`` that violates them
raises an error that says which. ``kd = 0`` (a PI: the entropy measurement is noisy).

**Fastest loop on a higher-order model** (:func:`min_spectral_radius_pi`): on an ARX(na, nb)
model ``A(q) H = B(q) u + c`` (``A = 1 - sum a_i q^-i``, ``B = sum b_j q^-j``) the same loop has
the characteristic polynomial ``A*(z) (z - 1) + B*(z) (kp (z - 1) + ki)`` with
``A*(z) = z^N A(z^-1)``, ``B*(z) = z^(N-1) B(z^-1)``, ``N = max(na, nb + 1)``
(:func:`arx_closed_loop_poles`). The rule picks the kp, ki (kd = 0) that minimise the largest
pole modulus (the slowest mode decays fastest), by a grid over ``[0, kp_max] x [0, ki_max]``
refined around the best point (``rounds`` grids in all; near repeated poles the minimum is
not smooth, so other grids can land on other gains of about the same spectral radius). An
ARX(2, 2) fit carries the optimiser's momentum (the bonus keeps acting for a step after it is
cut), which the first-order model cannot.

**Optuna** (:func:`tune_pi_optuna`): kp and ki minimising the mean ``|H - H*| / H*`` over the
second half of closed-loop simulations on the model (the real :class:`PIDEntropyController`
against the model with process and measurement noise, several noise seeds), TPE sampler seeded,
in-memory or any Optuna storage URL (``sqlite:///...``).

The generic ``mpc`` controller (``controllers/mpc.py``) needs a continuous-time ``PlantModel``;
it is not used here (see the study's notes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from llm_rl.entropy_control import ControlConfig, make_entropy_controller
from llm_rl.sysid import ARXModel

__all__ = ["PIDesign", "arx_closed_loop_poles", "closed_loop_poles", "min_spectral_radius_pi",
           "pole_placement_pi", "simulate_closed_loop", "tune_pi_optuna"]


@dataclass(frozen=True)
class PIDesign:
    """Designed gains and what they were designed for."""

    kp: float
    ki: float
    poles: tuple[complex, ...]
    rule: str
    details: Mapping[str, float]

    def pid_options(self, u_min: float = 0.0, u_max: float = 1.0, value: float = 0.0
                    ) -> dict[str, float]:
        """Options of the ``pid`` entropy controller
        (:class:`~llm_rl.entropy_control.PIDOptions`)."""
        return {"kp": self.kp, "ki": self.ki, "kd": 0.0, "u_min": u_min, "u_max": u_max,
                "value": value}


def _first_order(model: ARXModel) -> tuple[float, float]:
    if not isinstance(model, ARXModel):
        raise TypeError(f"the design needs a fitted ARXModel, got {type(model).__name__}")
    if model.na != 1 or model.nb != 1:
        raise ValueError(f"the design rule needs a first-order ARX model (na = nb = 1), got "
                         f"na = {model.na}, nb = {model.nb}")
    model._check_fitted()
    return float(model.a_[0]), float(model.b_[0])


def closed_loop_poles(a: float, b: float, kp: float, ki: float) -> tuple[complex, ...]:
    """Poles of the loop ``H_{k+1} = a H_k + b u_k``, ``u_{k+1} = PI(e_k)`` (module doc)."""
    roots = np.roots([1.0, -(1.0 + a), a + b * kp, b * (ki - kp)])
    return tuple(complex(r) for r in sorted(roots, key=lambda r: (-abs(r), r.imag)))


def pole_placement_pi(model: ARXModel, tau: float) -> PIDesign:
    """PI gains placing a double closed-loop pole at ``exp(-1/tau)`` (module doc)."""
    if not isinstance(tau, int | float) or isinstance(tau, bool) or not math.isfinite(tau) \
            or tau <= 0:
        raise ValueError(f"tau = {tau!r} is not valid; valid: a finite time constant > 0 "
                         f"(steps)")
    a, b = _first_order(model)
    if abs(b) < 1e-9:
        raise ValueError(f"the model's input gain b = {b!r} is ~0: the actuator does not move "
                         f"the entropy on this model, no gains can be designed")
    p = math.exp(-1.0 / tau)
    p3 = 1.0 + a - 2.0 * p
    if abs(p3) >= 1.0:
        raise ValueError(f"tau = {tau} puts the third pole at {p3:.3f} (outside the unit "
                         f"circle) for a = {a:.3f}: choose tau with exp(-1/tau) > "
                         f"{a / 2:.3f} and < {(2 + a) / 2:.3f}")
    kp = (p * p + 2.0 * p * p3 - a) / b
    ki = kp - p * p * p3 / b
    if kp < 0 or ki < 0:
        raise ValueError(f"tau = {tau} gives negative gains (kp = {kp:.3g}, ki = {ki:.3g}) for "
                         f"a = {a:.3f}, b = {b:.3f}: choose a smaller tau (faster loop)")
    return PIDesign(kp, ki, closed_loop_poles(a, b, kp, ki), "pole placement",
                    {"tau": float(tau), "p": p, "p3": p3, "a": a, "b": b})


def arx_closed_loop_poles(model: ARXModel, kp: float, ki: float) -> tuple[complex, ...]:
    """Poles of the trainer's loop with a PI on an ARX(na, nb) model (module doc)."""
    if not isinstance(model, ARXModel):
        raise TypeError(f"the design needs a fitted ARXModel, got {type(model).__name__}")
    model._check_fitted()
    n = max(model.na, model.nb + 1)
    a_star = np.zeros(n + 1)
    a_star[0] = 1.0
    a_star[1:model.na + 1] = -model.a_
    b_star = np.zeros(n)  # coefficients of z^(n-1) .. z^0: b_j multiplies z^(n-1-j)
    b_star[1:model.nb + 1] = model.b_
    poly = np.polyadd(np.polymul(a_star, [1.0, -1.0]), np.polymul(b_star, [kp, ki - kp]))
    roots = np.roots(poly)
    return tuple(complex(r) for r in sorted(roots, key=lambda r: (-abs(r), r.imag)))


def min_spectral_radius_pi(model: ARXModel, *, kp_max: float = 5.0, ki_max: float = 1.0,
                           grid: int = 41, rounds: int = 5) -> PIDesign:
    """PI gains minimising the largest closed-loop pole modulus on an ARX model (module doc)."""
    for name, v in (("kp_max", kp_max), ("ki_max", ki_max)):
        if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} = {v!r} is not valid; valid: finite > 0")
    if not isinstance(grid, int) or isinstance(grid, bool) or grid < 3:
        raise ValueError(f"grid = {grid!r} is not valid; valid: an integer >= 3")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
        raise ValueError(f"rounds = {rounds!r} is not valid; valid: an integer >= 1")

    def rho(kp: float, ki: float) -> float:
        return max(abs(p) for p in arx_closed_loop_poles(model, kp, ki))

    lo_p, hi_p, lo_i, hi_i = 0.0, float(kp_max), 0.0, float(ki_max)
    best = (math.inf, 0.0, 0.0)
    for _ in range(rounds):  # the grid, then refinements around its best point
        kps, kis = np.linspace(lo_p, hi_p, grid), np.linspace(lo_i, hi_i, grid)
        best = min([(rho(kp, ki), float(kp), float(ki)) for kp in kps for ki in kis] + [best])
        dp, di = (hi_p - lo_p) / (grid - 1), (hi_i - lo_i) / (grid - 1)
        lo_p, hi_p = max(best[1] - 2 * dp, 0.0), min(best[1] + 2 * dp, float(kp_max))
        lo_i, hi_i = max(best[2] - 2 * di, 0.0), min(best[2] + 2 * di, float(ki_max))
    r, kp, ki = best
    return PIDesign(kp, ki, arx_closed_loop_poles(model, kp, ki), "min spectral radius",
                    {"spectral_radius": r, "na": float(model.na), "nb": float(model.nb)})


def simulate_closed_loop(model: ARXModel, options: Mapping[str, Any], *, setpoint: float = 0.6,
                         steps: int = 120, h0: float | None = None, r: float = 0.0,
                         seed: int = 0, name: str = "pid") -> dict[str, Any]:
    """The registered entropy controller ``name`` with ``options`` against the model.

    State ``x_{k+1} = a x_k + b u_k + c + w_k``, ``w ~ N(0, q - (1 + a^2) r)`` (the ARX residual
    variance ``q`` less the part the measurement noise puts in it, floored at 0), measurement
    ``H_k = x_k + v_k``, ``v ~ N(0, r)``; the controller reads ``H_k`` and sets ``u_{k+1}``.
    Returns the measured ``H``, the inputs ``u`` and ``rel_err`` = mean ``|H - H*| / H*`` over
    the second half.
    """
    a, b = _first_order(model)
    if not math.isfinite(r) or r < 0:
        raise ValueError(f"noise variance r = {r!r} must be finite and >= 0")
    rng = np.random.default_rng(seed)
    q_proc = max(model.q_ - (1.0 + a * a) * r, 0.0)
    ctrl = make_entropy_controller(ControlConfig(name=name, setpoint=setpoint,
                                                 options=dict(options)))
    x = float(setpoint if h0 is None else h0)
    hs, us = [], []
    for _ in range(steps):
        u = ctrl.value
        h = x + math.sqrt(r) * rng.standard_normal()
        hs.append(h)
        us.append(u)
        ctrl.update(h)
        x = a * x + b * u + model.c_ + math.sqrt(q_proc) * rng.standard_normal()
        if not math.isfinite(x) or abs(x) > 1e6:
            hs[-1] = float("inf")
            break
    H = np.array(hs)
    second = H[len(H) // 2:]
    err = float(np.mean(np.abs(second - setpoint) / setpoint)) if np.all(np.isfinite(H)) \
        else float("inf")
    return {"H": H, "u": np.array(us), "rel_err": err}


def tune_pi_optuna(model: ARXModel, *, setpoint: float = 0.6, r: float = 0.0,
                   n_trials: int = 60, seed: int = 0, steps: int = 120, h0: float | None = None,
                   n_noise: int = 4, kp_max: float = 5.0, ki_max: float = 1.0,
                   u_max: float = 1.0, storage: str | None = None,
                   study_name: str = "entropy-pi") -> PIDesign:
    """kp, ki by Optuna (TPE, seeded) on closed-loop simulations of the model (module doc).

    The objective is the mean of :func:`simulate_closed_loop`'s ``rel_err`` over ``n_noise``
    noise seeds (the same seeds every trial). ``storage``: ``None`` for in-memory, or an Optuna
    URL such as ``sqlite:///tune.db`` (a rerun with the same name continues that study).
    """
    import optuna

    if not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials = {n_trials!r} is not valid; valid: an integer >= 1")
    if not isinstance(n_noise, int) or n_noise < 1:
        raise ValueError(f"n_noise = {n_noise!r} is not valid; valid: an integer >= 1")
    a, b = _first_order(model)

    def objective(trial: Any) -> float:
        kp = trial.suggest_float("kp", 0.0, kp_max)
        ki = trial.suggest_float("ki", 0.0, ki_max)
        opts = {"kp": kp, "ki": ki, "kd": 0.0, "u_min": 0.0, "u_max": u_max}
        errs = [simulate_closed_loop(model, opts, setpoint=setpoint, steps=steps, h0=h0, r=r,
                                     seed=1000 + i)["rel_err"] for i in range(n_noise)]
        return float(np.mean(errs))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", storage=storage, study_name=study_name,
                                load_if_exists=storage is not None,
                                sampler=optuna.samplers.TPESampler(seed=seed))
    done = len([t for t in study.trials if t.state.is_finished()])
    if done < n_trials:
        study.optimize(objective, n_trials=n_trials - done)
    best = study.best_trial
    kp, ki = float(best.params["kp"]), float(best.params["ki"])
    return PIDesign(kp, ki, closed_loop_poles(a, b, kp, ki), "optuna",
                    {"objective": float(best.value or 0.0), "trials": float(len(study.trials)),
                     "a": a, "b": b})
