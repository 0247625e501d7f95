"""``ctrlbench/NMESKnee-v0``: knee-angle tracking by neuromuscular electrical stimulation."""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, SupportsFloat

import numpy as np
from numpy.typing import NDArray
from scipy.integrate import ODEintWarning, odeint

from ctrlbench.model import PlantModel
from ctrlbench.plant import Plant
from ctrlbench.signals import SignalSpec
from plants.nmes.model import (
    INPUTS,
    MATH_OPS,
    PARAM_NAMES,
    STATES,
    THETA_MAX,
    THETA_MIN,
    NMESParams,
    nmes_dynamics,
    nmes_model,
    passive_equilibrium,
)
from plants.nmes.options import NMESKneeOptions
from plants.nmes.references import Reference, draw_reference

__all__ = ["CONTROL_PERIOD", "SESSION_STEPS", "NMESKnee"]

Obs = NDArray[np.float64]
CONTROL_PERIOD = 0.05
"""Control period [s]: one pulse-width update per 50 ms (20 Hz; stimulators pulse at 20-50 Hz,
so one command per one or two pulses; ctrlbench choice)."""
SESSION_STEPS = 800
"""Control periods of a session (40 s), the registered ``max_episode_steps``."""
_ATOL = np.array([1e-2, 1e-1, 1.0, 1e-2])  # times rtol: absolute tolerances per state


class NMESKnee(Plant):
    """Knee extension of a seated subject driven by quadriceps stimulation (NMES).

    The shank of :mod:`plants.nmes.model` (MODELS.md section 5: Ferrarin & Pedotti 2000 via
    Arcolezi et al. 2020) with muscle fatigue and an electromechanical delay (Riener et al. 1996
    style, values unverified), integrated by ODEPACK's LSODA (scipy ``odeint``) over each
    control period.
    ``model()`` is the same shank *without* the delay and with the nominal patient.

    ## Observation

    | # | signal | unit | bounds | meaning |
    |---|---|---|---|---|
    | 0 | ``theta`` | rad | [-pi/4, pi/2] | knee extension, 0 = shank hanging vertically |
    | 1 | ``omega`` | rad/s | [-20, 20] | knee angular velocity |
    | 2 | ``M_a`` | N m | [0, 40] | unfatigued activation torque |
    | 3 | ``fitness`` | 1 | [0, 1] | muscle fitness, the delivered torque is ``fitness M_a`` |
    | 4 | ``theta_ref`` | rad | [0, 1.4] | knee-angle reference (``tracks="theta"``) |

    ``theta`` and ``omega`` are measured (Gaussian noise of std ``noise_theta`` /
    ``noise_omega``, then clipped to the bounds); ``M_a`` and ``fitness`` are given exactly, as
    an ideal estimator would (a simplification: they are not measurable in a patient).

    ## Action

    | # | signal | unit | bounds | meaning |
    |---|---|---|---|---|
    | 0 | ``P`` | us | [0, 500] | pulse width (the stimulator's limit is the bound) |

    The muscle receives the command ``emd`` seconds later (electromechanical delay, nominal
    50 ms, before any command: none). NaN or a value outside [0, 500] raises ``ActionError``
    naming the value.

    ## Reward
    ``-(theta_ref - theta)^2`` [rad^2] per period (true angle, at the end of the period).

    ## Starting state
    At rest (``omega = 0``, ``M_a = 0``, ``fitness = fitness0``) at the patient's passive
    equilibrium (8.56 deg for the nominal one) or at ``theta0_deg``. With
    ``patient="random"`` every parameter of :class:`~plants.nmes.model.NMESParams` but ``g``
    (shank, activation, fatigue, delay) is multiplied by a factor uniform in
    ``1 +- spread`` (default 15 %) drawn from the reset seed. The reference (``reference``
    option): ``"step"`` levels uniform in ``[ref_low_deg, ref_high_deg]`` (default 10-60 deg)
    held ``hold_s`` each, ``"sine"`` from the low to the high end and back every
    ``sine_period_s``, ``"random"`` one of the two per seed. ``info`` of ``reset`` lists the
    patient's parameters and factors, its passive equilibrium and the reference.

    ## Episode end
    Terminates when the knee leaves the safe range of motion ``[-45, 90]`` deg (the stimulator's
    safety stop; the model has no joint stop, so a straight knee would otherwise rotate on):
    ``info["out_of_range"]``, with the observation clipped. Terminates when the integrator fails:
    ``info["solver_failed"]``, ``info["solver_message"]``, the last finite observation. The
    registered id truncates after 800 periods (a 40 s session). ``info`` of every step carries
    ``fitness``, the delivered torque and pulse width and the time.

    ## Recommended controller options
    ``controller_defaults["rise"]``: physical units (error in rad, output in us) with the gains
    of the reproducible hand tuning of :func:`controllers.rise_tuning.hand_tune_rise`
    (``ks=40, alpha1=2, alpha2=1, beta=10``): RISE's generic normalized defaults drive the
    stimulation bang-bang here and end the session early. ``controller_defaults["mpc"]``:
    horizon 60 (3 s, beyond the ~1 s activation lag), one RK4 substep, move weight 10, terminal
    weight 10 (the settings of ``studies/nmes_rise.py``): with the generic 0.5 s horizon the NMPC
    plans a full-stimulation overshoot and leaves the range of motion within a second. Explicit
    ``--set`` options override.

    ## Arguments
    Keyword options of :class:`~plants.nmes.options.NMESKneeOptions`.

    ## Version history
    - v0: first version.
    """

    #: Options a controller gets on this plant unless given explicitly (see the docstring).
    controller_defaults = {  # noqa: RUF012
        "rise": {"units": "physical", "ks": 40.0, "alpha1": 2.0, "alpha2": 1.0, "beta": 10.0},
        "mpc": {"horizon": 60, "substeps": 1, "r_move": 10.0, "q_terminal": 10.0},
    }

    def __init__(self, **options: Any) -> None:
        opts = NMESKneeOptions.build(options, what="plant 'NMESKnee-v0'")
        self.options = opts
        self.dt = CONTROL_PERIOD
        self._nominal = NMESParams()
        self._model = nmes_model(self._nominal)
        ref = SignalSpec("theta_ref", "rad", 0.0, math.radians(80.0),
                         "knee-angle reference", tracks="theta")
        self.set_signals((*STATES, ref), INPUTS)
        self._low = np.array([s.low for s in STATES])
        self._high = np.array([s.high for s in STATES])
        self._params = self._nominal
        self._p = self._nominal.as_dict()
        self._ref = Reference("sine", 0.0, 0.0, (), 1.0)
        self._x = np.zeros(4)
        self._commands: list[float] = []
        self._k = 0
        self._obs = np.zeros(5)

    def model(self) -> PlantModel:
        """The shank model with nominal parameters and no electromechanical delay."""
        return self._model

    # -- episode set-up ---------------------------------------------------------------------
    def _draw_patient(self) -> tuple[NMESParams, dict[str, float]]:
        opts = self.options
        factors = {name: 1.0 for name in PARAM_NAMES}
        if opts.patient == "random":
            draws = self.np_random.uniform(1 - opts.spread, 1 + opts.spread, len(PARAM_NAMES))
            factors = {name: float(f) for name, f in zip(PARAM_NAMES, draws)}
        params = self._nominal.scaled(factors)
        if opts.emd is not None:
            params = dataclasses.replace(params, emd=opts.emd)
        return params, factors

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Obs, dict[str, Any]]:
        """Start a session at rest with a new patient (if random) and reference."""
        super().reset(seed=seed)
        opts = self.options
        self._params, factors = self._draw_patient()
        self._p = self._params.as_dict()
        self._ref = draw_reference(self.np_random, opts.reference, opts.ref_low_deg,
                                   opts.ref_high_deg, opts.hold_s, opts.sine_period_s)
        rest = passive_equilibrium(self._params)
        theta0 = rest if opts.theta0_deg is None else math.radians(opts.theta0_deg)
        self._x = np.array([theta0, 0.0, 0.0, opts.fitness0])
        self._commands = []
        self._k = 0
        self._obs = self._measure()
        info = {"patient": opts.patient, "params": self._params, "factors": factors,
                "passive_equilibrium": rest, "reference": self._ref, "fitness": opts.fitness0}
        return self._obs.copy(), info

    # -- stepping ---------------------------------------------------------------------------
    def _measure(self) -> Obs:
        x = self._x.copy()
        opts = self.options
        if opts.noise_theta > 0 or opts.noise_omega > 0:
            x[:2] += np.array([opts.noise_theta, opts.noise_omega]) * \
                self.np_random.standard_normal(2)
        x = np.clip(x, self._low, self._high)
        return np.append(x, self._ref((self._k) * self.dt))

    def _command(self, i: int) -> float:
        return self._commands[i] if i >= 0 else 0.0

    def _segments(self) -> list[tuple[float, float]]:
        """``(duration, delivered pulse [us])`` pieces of this period under the delay."""
        k, dt = self._k, self.dt
        n = math.floor(self._params.emd / dt + 1e-9)
        rest = self._params.emd - n * dt
        if rest <= 1e-12:
            return [(dt, self._command(k - n))]
        return [(rest, self._command(k - n - 1)), (dt - rest, self._command(k - n))]

    def _advance(self, x: NDArray[np.float64], duration: float, pulse: float
                 ) -> NDArray[np.float64]:
        """ODEPACK LSODA over one piece of the period. Through ``odeint``, not ``solve_ivp``:
        scipy 1.17's ``solve_ivp(method="LSODA")`` keeps every call's work array alive (see
        :mod:`plants.crystallization.model`)."""
        p, u = self._p, (pulse,)
        rtol = self.options.rtol
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ODEintWarning)
            ys, out = odeint(lambda t, y: nmes_dynamics(y, u, p, MATH_OPS), x, [0.0, duration],
                             tfirst=True, rtol=rtol, atol=rtol * _ATOL, mxstep=50_000,
                             full_output=True)
        y_end = np.asarray(ys[-1], dtype=float)
        if out["message"] != "Integration successful." or not np.all(np.isfinite(y_end)):
            raise ArithmeticError(f"LSODA failed over {duration:g} s: {out['message']}")
        return y_end

    def _step(self, action: NDArray[np.float64]
              ) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        self._commands.append(float(action[0]))
        segments = self._segments()
        info: dict[str, Any] = {"t": (self._k + 1) * self.dt, "solver_failed": False,
                                "out_of_range": False, "pulse_delivered": segments[-1][1]}
        x = self._x
        try:
            for duration, pulse in segments:
                x = self._advance(x, duration, pulse)
        except (ArithmeticError, ValueError) as exc:
            info.update(solver_failed=True, solver_message=str(exc),
                        fitness=float(self._x[3]))
            err = self._obs[4] - self._x[0]
            return self._obs.copy(), -float(err**2), True, False, info
        self._x = x
        self._k += 1
        self._obs = self._measure()
        theta, fit = float(x[0]), float(x[3])
        out = not (THETA_MIN <= theta <= THETA_MAX)
        info.update(out_of_range=out, fitness=fit, torque=fit * float(x[2]), theta_true=theta)
        err = self._obs[4] - theta
        return self._obs.copy(), -float(err**2), out, False, info
