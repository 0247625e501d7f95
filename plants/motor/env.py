"""Motor plants on gym-electric-motor (GEM 3.0.3), in physical units.

Observations are GEM's full state vector followed by its references, denormalised with GEM's
limits (GEM itself returns a ``(state / limits, reference / limits)`` tuple). Every reference signal
names the state it ``tracks``. As in GEM, the observed reference is the set-point for the *next*
state (the one the current action acts on) and a limit violation terminates the episode. The
classes themselves never truncate; the registered ids (``ctrlbench/DCSpeed-v0``,
``ctrlbench/PMSMCurrent-v0``) add gymnasium's ``TimeLimit`` of 10,000 steps (1 s).

Actions, both in [-1, 1]:

- ``DCSpeed``: ``duty``, the duty cycle of GEM's continuous four-quadrant converter; armature
  voltage ``u = duty * u_sup`` (u_sup = 60 V).
- ``PMSMCurrent``: ``(u_sd_cmd, u_sq_cmd)``, the rotor-frame voltage vector divided by ``2/3 u_sup``
  (= 200 V, the largest vector the B6 bridge makes). The plant maps it to phase duty cycles with the
  electrical angle of the current state (the angle GEM uses to transform the phase voltages over
  the step) and min-max zero-sequence injection (space-vector-PWM equivalent), then clips each phase
  to [-1, 1] as GEM's converter does. Inside the hexagon's inscribed circle (radius
  ``sqrt(3)/2 ~ 0.866``) the dq voltage is applied exactly, so the plant matches ``model()``.

Seeding: ``reset(seed=s)`` seeds GEM with ``s`` (so the reference profile is the one raw GEM gives
for seed ``s``); later ``reset()`` calls seed GEM from the plant's ``np_random``.
"""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

import gym_electric_motor as gem
import numpy as np
from numpy.typing import NDArray

from ctrlbench.model import PlantModel
from ctrlbench.plant import Plant
from ctrlbench.signals import SignalSpec
from plants.motor.model import DCMotorParams, PMSMParams, dc_motor_model, pmsm_dq_model
from plants.motor.options import DCSpeedOptions, PMSMCurrentOptions
from plants.motor.references import StepReference

__all__ = ["DCSpeed", "PMSMCurrent"]

Obs = NDArray[np.float64]
_SQRT3_2 = math.sqrt(3.0) / 2.0
#: GEM's control period for the continuous-control envs used here (checked at construction).
GEM_TAU = 1e-4
#: Observation-space bounds are the signal bounds times this (room for a terminating step).
OBS_MARGIN = 1.5
_DESCRIPTIONS = {
    "omega": "mechanical speed", "torque": "electrical torque", "epsilon": "electrical angle",
    "u_sup": "DC-link voltage", "i": "armature current", "u": "armature voltage",
}


def _unit(name: str) -> str:
    if name == "omega":
        return "rad/s"
    if name == "torque":
        return "N*m"
    if name == "epsilon":
        return "rad"
    return "A" if name.startswith("i") else "V"


class _GemPlant(Plant):
    """Shared wrapper logic: signals, denormalisation, seeding, fast action validation."""

    def __init__(
        self,
        gem_env: Any,
        action_signals: tuple[SignalSpec, ...],
        bounds: dict[str, tuple[float, float]] | None = None,
    ) -> None:
        self.gem = gem_env
        ps = gem_env.physical_system
        names = list(ps.state_names)
        limits = np.asarray(ps.limits, dtype=float)
        state_space, ref_space = gem_env.observation_space
        ref_names = list(gem_env.reference_names)
        ref_idx = [names.index(r) for r in ref_names]
        self._names = names
        self.dt = float(ps.tau)
        if self.dt != GEM_TAU:
            raise RuntimeError(f"GEM's tau is {self.dt}, step references assume {GEM_TAU}")
        low = np.concatenate((state_space.low * limits, ref_space.low * limits[ref_idx]))
        high = np.concatenate((state_space.high * limits, ref_space.high * limits[ref_idx]))
        for name, (lo, hi) in (bounds or {}).items():  # where the plant exceeds GEM's limits
            low[names.index(name)], high[names.index(name)] = lo, hi
        obs_signals = [
            SignalSpec(n, _unit(n), float(lo), float(hi), _DESCRIPTIONS.get(n, n))
            for n, lo, hi in zip(names, low, high)
        ]
        obs_signals += [
            SignalSpec(f"{r}_ref", _unit(r), float(lo), float(hi), f"set-point of {r}", tracks=r)
            for r, lo, hi in zip(ref_names, low[len(names):], high[len(names):])
        ]
        # GEM terminates an episode on the step that crosses a limit, so that last observation
        # lies past the limit (seen: 230 A on a 210 A limit). The observation space leaves
        # OBS_MARGIN for it; the signals keep the limits themselves (constraint metrics use them).
        self.set_signals(obs_signals, action_signals, observation_margin=OBS_MARGIN)
        a_low = np.array([s.low for s in action_signals])
        a_high = np.array([s.high for s in action_signals])
        self._scale = np.concatenate((limits, limits[ref_idx]))
        self._limits = limits
        # bounds as Python floats: for 1-3 entries scalar checks beat numpy's per-call overhead
        tol = self.action_tolerance * np.maximum(1.0, np.maximum(np.abs(a_low), np.abs(a_high)))
        self._a_shape = self.action_space.shape
        self._bounds = list(
            zip(a_low.tolist(), a_high.tolist(), (a_low - tol).tolist(), (a_high + tol).tolist())
        )

    # -- gymnasium API ----------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Obs, dict[str, Any]]:
        """Reset GEM; ``seed`` seeds its reference generator and initial state."""
        super().reset(seed=seed)
        gem_seed = seed if seed is not None else int(self.np_random.integers(2**63 - 1))
        (state, ref), info = self.gem.reset(seed=gem_seed)
        self._observe_state(state)
        obs = np.concatenate((state, ref))
        obs *= self._scale
        return obs, dict(info)

    def step(self, action: Any) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        """Validate ``action`` (as :meth:`Plant.validate_action`) and advance one period."""
        if (type(action) is np.ndarray and action.shape == self._a_shape
                and action.dtype.kind == "f" and self._ended is None):
            values = []
            for v, (lo, hi, lo_tol, hi_tol) in zip(action.tolist(), self._bounds):
                if not lo_tol <= v <= hi_tol:  # also false for NaN
                    break
                values.append(lo if v < lo else hi if v > hi else v)
            else:
                out = self._step_values(values)
                if out[2]:
                    self._ended = "terminated"
                return out
        return super().step(action)  # raises for a bad action or an ended episode

    def _step(
        self, action: NDArray[np.float64]
    ) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        return self._step_values(action.tolist())

    def _step_values(
        self, action: list[float]
    ) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        (state, ref), reward, terminated, truncated, info = self.gem.step(self._gem_action(action))
        self._observe_state(state)
        obs = np.concatenate((state, ref))
        obs *= self._scale
        return obs, float(reward), bool(terminated), bool(truncated), info

    def close(self) -> None:
        """Close the GEM environment."""
        self.gem.close()

    # -- hooks ------------------------------------------------------------------------------------
    def _gem_action(self, action: list[float]) -> NDArray[np.float64]:
        return np.array(action)

    def _observe_state(self, state: NDArray[np.float64]) -> None:
        """Remember what the next action transform needs from the (normalised) GEM state."""


def _step_index(step_time: float) -> int:
    """Control step at which a step reference switches (GEM's tau is ``GEM_TAU``)."""
    if not (math.isfinite(step_time) and step_time >= 0):
        raise ValueError(f"step_time must be >= 0 s, got {step_time!r}")
    return round(step_time / GEM_TAU)


class DCSpeed(_GemPlant):
    """Permanently excited DC motor, speed control (GEM ``Cont-SC-PermExDc-v0``).

    Observation: ``omega`` (rad/s), ``torque`` (N·m), ``i`` (A), ``u`` (V), ``u_sup`` (V),
    ``omega_ref`` (rad/s). Action: ``duty`` in [-1, 1], armature voltage ``duty * 60 V``.
    The armature current limit (210 A) terminates the episode.

    ## Observation (SI units; bounds = GEM's limits)

    | # | signal | unit | bounds |
    |---|---|---|---|
    | 0 | ``omega`` | rad/s | [-400, 400] |
    | 1 | ``torque`` | N*m | [-38, 38] |
    | 2 | ``i`` | A | [-210, 210] |
    | 3 | ``u`` | V | [-60, 60] |
    | 4 | ``u_sup`` | V | [0, 60] |
    | 5 | ``omega_ref`` | rad/s | [-400, 400], ``tracks="omega"`` |

    ## Action
    ``duty`` in [-1, 1]: the armature voltage is ``duty * 60 V``.

    ## Reward
    GEM's default: the negative weighted absolute tracking error of ``omega``.

    ## Episode end
    Terminates when a GEM limit is crossed (e.g. the 210 A current limit); the registered id
    truncates at 10,000 steps (1 s).

    ## Arguments
    Keyword options of :class:`~plants.motor.options.DCSpeedOptions` (``reference``,
    ``step_to``, ``step_time``).

    ## Version history
    - v0: GEM 3.0.3 ``Cont-SC-PermExDc-v0``.
    """

    #: LQR has no current limit: GEM's random speed steps need a set-point prefilter, else the
    #: first jump trips the 210 A limit (0.3 s: 1 s episodes, seeds 0-2, peak 108-147 A).
    controller_defaults = {"lqr": {"reference_tau": 0.3}}  # noqa: RUF012

    def __init__(self, **options: Any) -> None:
        opts = DCSpeedOptions.build(options, what="plant 'DCSpeed-v0'")
        self.options = opts
        kwargs: dict[str, Any] = {"visualization": ()}
        if opts.reference == "step":
            kwargs["reference_generator"] = StepReference(
                ("omega",), (0.0,), (opts.step_to,), _step_index(opts.step_time)
            )
        env = gem.make("Cont-SC-PermExDc-v0", **kwargs).unwrapped
        duty = SignalSpec(
            "duty", "1", -1.0, 1.0, "four-quadrant converter duty cycle (armature voltage / u_sup)"
        )
        super().__init__(env, (duty,))
        ps = env.physical_system
        motor, load = ps.electrical_motor.motor_parameter, ps.mechanical_load
        lim = dict(zip(self._names, self._limits))
        self._model = dc_motor_model(
            DCMotorParams(
                r_a=motor["r_a"], l_a=motor["l_a"], psi_e=motor["psi_e"], j_total=load.j_total,
                u_sup=float(ps.supply.u_nominal), load_a=load.load_parameter["a"],
                load_b=load.load_parameter["b"], load_c=load.load_parameter["c"],
                tau_decay=load.tau_decay, i_max=float(lim["i"]), omega_max=float(lim["omega"]),
            )
        )

    def model(self) -> PlantModel:
        """DC motor ODE with GEM's parameters (states ``omega``, ``i``; input ``duty``)."""
        return self._model


class PMSMCurrent(_GemPlant):
    """PMSM dq current control at constant speed (GEM ``Cont-CC-PMSM-v0``).

    Observation: GEM's 14 states (``omega``, ``torque``, ``i_a..i_c``, ``i_sd``, ``i_sq``,
    ``u_a..u_c``, ``u_sd``, ``u_sq``, ``epsilon``, ``u_sup``) in SI units, then ``i_sd_ref`` and
    ``i_sq_ref`` (A). Action: ``(u_sd_cmd, u_sq_cmd)`` in [-1, 1], the dq voltage divided by
    ``2/3 u_sup`` (see the module docstring). A current vector above 400 A terminates the episode.

    ## Observation (SI units)

    | # | signal | unit | bounds |
    |---|---|---|---|
    | 0 | ``omega`` | rad/s | [-418.9, 418.9] |
    | 1 | ``torque`` | N*m | current-circle bound |
    | 2-4 | ``i_a``, ``i_b``, ``i_c`` | A | [-400, 400] |
    | 5, 6 | ``i_sd``, ``i_sq`` | A | [-400, 400] |
    | 7-9 | ``u_a``, ``u_b``, ``u_c`` | V | [-150, 150] |
    | 10, 11 | ``u_sd``, ``u_sq`` | V | [-200, 200] (hexagon vertex) |
    | 12 | ``epsilon`` | rad | [-pi, pi] |
    | 13 | ``u_sup`` | V | [0, 300] |
    | 14, 15 | ``i_sd_ref``, ``i_sq_ref`` | A | [-400, 400], ``tracks`` i_sd / i_sq |

    ## Action
    ``(u_sd_cmd, u_sq_cmd)`` in [-1, 1]: dq voltage / 200 V.

    ## Reward
    GEM's default: the negative weighted absolute tracking error of the currents.

    ## Episode end
    Terminates when the current vector exceeds 400 A; the registered id truncates at 10,000
    steps (1 s).

    ## Arguments
    Keyword options of :class:`~plants.motor.options.PMSMCurrentOptions` (``reference``,
    ``i_sd_step``, ``i_sq_step``, ``step_time``, ``omega``).

    ## Version history
    - v0: GEM 3.0.3 ``Cont-CC-PMSM-v0``.
    """

    def __init__(self, **options: Any) -> None:
        opts = PMSMCurrentOptions.build(options, what="plant 'PMSMCurrent-v0'")
        self.options = opts
        # GEM 3.0.3's ConstantSpeedLoad writes omega_fixed into a class-level initializer dict
        # shared by every instance (a shallow copy): the last plant built would set the start
        # speed of all. Our own initializer dict keeps each plant's speed its own.
        load = {"omega_fixed": opts.omega, "load_initializer": {"states": {"omega": opts.omega}}}
        kwargs: dict[str, Any] = {"visualization": (), "load": load}
        if opts.reference == "step":
            kwargs["reference_generator"] = StepReference(
                ("i_sd", "i_sq"), (0.0, 0.0), (opts.i_sd_step, opts.i_sq_step),
                _step_index(opts.step_time)
            )
        env = gem.make("Cont-CC-PMSM-v0", **kwargs).unwrapped
        actions = (
            SignalSpec("u_sd_cmd", "1", -1.0, 1.0, "d-axis voltage / (2/3 u_sup)"),
            SignalSpec("u_sq_cmd", "1", -1.0, 1.0, "q-axis voltage / (2/3 u_sup)"),
        )
        ps = env.physical_system
        mp = ps.electrical_motor.motor_parameter
        # Where the plant goes past GEM's nominal limits without violating a constraint: the dq
        # voltage reaches the hexagon vertex (GEM: u_sup/2); the torque is bounded by the current
        # circle (GEM's torque limit assumes the nominal 240 A).
        u_max = 2.0 / 3.0 * float(ps.supply.u_nominal)
        i_max = float(ps.limits[ps.state_names.index("i_sd")])
        t_max = 1.5 * mp["p"] * (abs(mp["psi_p"]) + abs(mp["l_d"] - mp["l_q"]) * i_max) * i_max
        bounds = {"u_sd": (-u_max, u_max), "u_sq": (-u_max, u_max), "torque": (-t_max, t_max)}
        super().__init__(env, actions, bounds)
        pr = PMSMParams(
            p=float(mp["p"]), r_s=mp["r_s"], l_d=mp["l_d"], l_q=mp["l_q"], psi_p=mp["psi_p"],
            omega=float(ps.mechanical_load.omega_fixed), u_sup=float(ps.supply.u_nominal),
            i_max=float(self._limits[self._names.index("i_sd")]),
        )
        self._model = pmsm_dq_model(pr)
        self._eps_idx = self._names.index("epsilon")
        self._eps_scale = float(self._limits[self._eps_idx])
        self._eps = 0.0
        # volts per command unit, and duty per volt (phase duty = u_phase / (u_sup / 2))
        self._k_volt = pr.u_scale
        self._k_duty = 2.0 / pr.u_sup

    def model(self) -> PlantModel:
        """PMSM dq current equations with GEM's parameters at the load's speed."""
        return self._model

    def _observe_state(self, state: NDArray[np.float64]) -> None:
        self._eps = float(state[self._eps_idx]) * self._eps_scale

    def _gem_action(self, action: list[float]) -> NDArray[np.float64]:
        # dq -> alpha-beta -> abc at the current electrical angle (GEM's convention)
        d, q = action[0] * self._k_volt, action[1] * self._k_volt
        c, s = math.cos(self._eps), math.sin(self._eps)
        alpha, beta = c * d - s * q, s * d + c * q
        ua, ub, uc = alpha, -0.5 * alpha + _SQRT3_2 * beta, -0.5 * alpha - _SQRT3_2 * beta
        # min-max zero-sequence injection (SVPWM equivalent); it does not change the dq voltage
        off = 0.5 * (max(ua, ub, uc) + min(ua, ub, uc))
        k = self._k_duty
        return np.array([
            min(1.0, max(-1.0, (ua - off) * k)),
            min(1.0, max(-1.0, (ub - off) * k)),
            min(1.0, max(-1.0, (uc - off) * k)),
        ])
