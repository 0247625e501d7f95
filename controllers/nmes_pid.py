"""PI with model-inverting stimulation feed-forward for ``ctrlbench/NMESKnee-v0`` (``"pid"``).

Design rule (from the nominal :func:`plants.nmes.model.nmes_model`, no delay, fitness 1):

1. **Linearize** the shank at ``theta_design_deg`` (default 35 deg, mid clinical range) at rest
   with the static activation: from pulse width [us] to angle,
   ``G(s) = K / ((tau s + 1)(s^2 / w_n^2 + 2 zeta s / w_n + 1))`` (activation lag ``tau``
   0.95 s, a lightly damped shank resonance, nominal ``w_n`` 5.1 rad/s and ``zeta`` 0.07,
   ``K`` 4.4e-3 rad/us).
2. **IMC PI** on the activation lag (Rivera, Morari & Skogestad 1986): the PI zero cancels
   ``tau`` (``T_i = tau``) and ``kp = tau / (K lambda_c)``, so the loop is
   ``L(s) = R(s) / (lambda_c s)`` with ``R`` the resonance. Its phase reaches -180 deg at
   ``w_n``, where ``|R| = 1 / (2 zeta)``; the gain margin ``gain_margin`` there fixes
   ``lambda_c = gain_margin / (2 zeta w_n)`` (2.7 s at the default 2). A PI through a 1 s lag
   cannot damp the resonance (its closed-loop pole sum is fixed), so the loop is kept slow and
   the tracking comes from the feed-forward; the PI removes fatigue, patient mismatch and the
   rest. The electromechanical delay and the zero-order hold (~75 ms together) move the
   -180 deg crossing slightly below ``w_n``; the margin there is a little larger.
3. **Feed-forward by model inversion** (``feedforward``): a third-order reference model with a
   triple pole at ``-ref_bandwidth`` gives a smooth ``theta_m`` and its first three
   derivatives; the nominal shank and activation inverted along it give the pulse width
   ``P_ff = (T + tau dT/dt) / (fitness G)``, ``T = J theta_m'' + B theta_m' + m g l
   sin(theta_m) - M_s(theta_m)`` (``theta`` is a flat output of the shank + activation chain).
   With ``fitness_scheduling`` the observed fitness divides it (fatigue compensated at once);
   otherwise fitness 1. The inversion is evaluated on the reference model predicted
   ``dt/2 + emd`` ahead (reference held; nominal ``emd`` from the model's parameters), which
   compensates the zero-order hold and the plant's delay: on the nominal model without delay
   this cut the feed-forward-only error to ``theta_m`` on the 8 s sine from 2.2 to 0.1 deg
   (bandwidth 5 rad/s). The PI acts on ``theta_m - theta``. ``ref_bandwidth = None`` drops the
   reference model: static feed-forward ``T(theta_ref)`` and the PI on ``theta_ref - theta``.

Output: :class:`controllers.pid.PID` with the feed-forward added before the saturation to the
action bounds ([0, 500] us) and back-calculation anti-windup (``kaw = ki / kp``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from controllers.pid import PID
from controllers.pid_design import PIGains
from ctrlbench.controller import FeedbackController
from ctrlbench.model import PlantModel
from ctrlbench.options import Options, option
from ctrlbench.plant import plant_dt, signals_of
from ctrlbench.signals import index_of, reference_index

__all__ = ["NMESPID", "NMESPIDOptions", "ReferenceModel", "design_nmes_pid", "imc_resonant_pi"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class NMESPIDOptions(Options):
    """Design settings of the NMES knee PI (see :mod:`controllers.nmes_pid`)."""

    label = "controller 'pid' (NMESKnee)"
    theta_design_deg: float = option(35.0, "linearization angle [deg]", ge=5.0, le=80.0)
    gain_margin: float = option(2.0, "gain margin at the shank resonance [-]", ge=1.2, le=50.0)
    ref_bandwidth: float | None = option(
        5.0, "triple pole of the reference model [rad/s]; None = static feed-forward on "
        "theta_ref", gt=0.0, le=20.0)
    feedforward: bool = option(True, "add the model-inverting stimulation feed-forward")
    fitness_scheduling: bool = option(
        True, "divide the feed-forward by the observed fitness (fatigue compensation)")


def imc_resonant_pi(gain: float, tau: float, w_n: float, zeta: float, gain_margin: float
                    ) -> PIGains:
    """IMC PI for ``gain / ((tau s + 1)(s^2/w_n^2 + 2 zeta s/w_n + 1))`` (module docstring).

    Returns
    -------
    PIGains
        ``kp = tau / (gain lambda_c)``, ``ki = kp / tau``, ``t_equiv = lambda_c`` with
        ``lambda_c = gain_margin / (2 zeta w_n)``.
    """
    values = {"gain": gain, "tau": tau, "w_n": w_n, "zeta": zeta, "gain_margin": gain_margin}
    for name, v in values.items():
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be positive and finite, got {v!r}")
    lam = gain_margin / (2.0 * zeta * w_n)
    kp = tau / (gain * lam)
    return PIGains(kp=kp, ki=kp / tau, t_equiv=lam)


class ReferenceModel:
    """``theta_m`` following ``theta_ref`` through ``w^3 / (s + w)^3`` (exact ZOH steps).

    Parameters
    ----------
    bandwidth:
        ``w`` [rad/s].
    dt:
        Control period [s].
    lead:
        :meth:`derivatives` reports the model ``lead`` seconds ahead (reference held) [s].
    """

    def __init__(self, bandwidth: float, dt: float, lead: float = 0.0) -> None:
        w = bandwidth
        self.a = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [-w**3, -3 * w**2, -3 * w]])
        self.b = np.array([0.0, 0.0, w**3])
        self._ad, self._bd = self._zoh(dt)
        self._ad_lead, self._bd_lead = self._zoh(lead)
        self.z = np.zeros(3)

    def _zoh(self, t: float) -> tuple[FloatArray, FloatArray]:
        from scipy.linalg import expm

        aug = np.zeros((4, 4))
        aug[:3, :3], aug[:3, 3] = self.a, self.b
        phi = expm(aug * t)
        return phi[:3, :3], phi[:3, 3]

    def reset(self, theta: float) -> None:
        """Start at rest at ``theta``."""
        self.z = np.array([theta, 0.0, 0.0])

    def derivatives(self, ref: float) -> tuple[float, float, float, float]:
        """``theta_m`` and its first three derivatives ``lead`` ahead, for the reference ``ref``."""
        z = self._ad_lead @ self.z + self._bd_lead * ref
        jerk = float(self.a[2] @ z + self.b[2] * ref)
        return float(z[0]), float(z[1]), float(z[2]), jerk

    def advance(self, ref: float) -> None:
        """One control period with ``ref`` held."""
        self.z = self._ad @ self.z + self._bd * ref


class NMESPID(FeedbackController):
    """PI on the knee angle plus the model-inverting stimulation feed-forward.

    Parameters
    ----------
    dt:
        Control period [s].
    index:
        Observation positions of ``theta``, ``theta_ref`` and ``fitness``.
    params:
        Nominal model parameters (``model.params``).
    pid:
        The PI core (gains, pulse-width limits, anti-windup).
    options:
        The design options (feed-forward switches, reference model).
    """

    def __init__(self, dt: float, index: tuple[int, int, int], params: dict[str, float],
                 pid: PID, options: NMESPIDOptions) -> None:
        super().__init__(dt)
        self.theta_i, self.ref_i, self.fit_i = index
        self.p, self.pid, self.options = params, pid, options
        bw = options.ref_bandwidth
        lead = 0.5 * dt + params.get("emd", 0.0)
        self.ref_model = None if bw is None else ReferenceModel(bw, dt, lead)
        self._started = False

    def reset(self) -> None:
        """Zero the integrator; the reference model restarts at the next measured angle."""
        self.pid.reset()
        self._started = False

    def _pulse_ff(self, th: float, dth: float, ddth: float, dddth: float, fit: float) -> float:
        p = self.p
        phi = th + math.pi / 2
        e = math.exp(-p["E"] * phi)
        m_s = -p["lam"] * e * (phi - p["omega_s"])
        dm_s = -p["lam"] * e * (1.0 - p["E"] * (phi - p["omega_s"]))
        mgl = p["m"] * p["g"] * p["l"]
        torque = p["J"] * ddth + p["B"] * dth + mgl * math.sin(th) - m_s
        d_torque = p["J"] * dddth + p["B"] * ddth + (mgl * math.cos(th) - dm_s) * dth
        return (torque + p["tau"] * d_torque) / (fit * p["G"]) * 1e6

    def compute(self, observation: FloatArray) -> FloatArray:
        """One step: pulse width [us]."""
        theta, ref = float(observation[self.theta_i]), float(observation[self.ref_i])
        fit = 1.0
        if self.options.fitness_scheduling:
            fit = min(max(float(observation[self.fit_i]), 0.1), 1.0)
        if self.ref_model is None:
            target, derivs = ref, (0.0, 0.0, 0.0)
        else:
            if not self._started:
                self.ref_model.reset(theta)
            target, *rest = self.ref_model.derivatives(ref)
            derivs = (rest[0], rest[1], rest[2])
            self.ref_model.advance(ref)
        self._started = True
        ff = self._pulse_ff(target, *derivs, fit) if self.options.feedforward else 0.0
        return np.array([self.pid.update(target - theta, measurement=theta, feedforward=ff)])


def design_nmes_pid(plant: Any, model: PlantModel, options: NMESPIDOptions) -> NMESPID:
    """The NMES knee PI for ``plant`` from its nominal ``model`` (registry ``"pid"``).

    Parameters
    ----------
    plant:
        ``ctrlbench/NMESKnee-v0`` (possibly wrapped): observes ``theta``, its reference and
        ``fitness``.
    model:
        Its :func:`~plants.nmes.model.nmes_model`.
    options:
        :class:`NMESPIDOptions`.
    """
    from plants.nmes.model import NMESParams, static_pulse

    p = dict(model.params)
    params = NMESParams(**{k: v for k, v in p.items() if k != "p_max"})
    theta = math.radians(options.theta_design_deg)
    u0 = static_pulse(theta, params)
    x0 = (theta, 0.0, p["G"] * u0 * 1e-6, 1.0)
    a, b, _, _ = model.linearize(x0, (u0,))
    w_n = math.sqrt(-a[1, 0])
    zeta = -a[1, 1] / (2.0 * w_n)
    gain = b[2, 0] / -a[2, 2] * a[1, 2] / -a[1, 0]
    gains = imc_resonant_pi(gain, -1.0 / a[2, 2], w_n, zeta, options.gain_margin)
    obs, act = signals_of(plant)
    dt = plant_dt(plant)
    pid = PID(gains.kp, gains.ki, dt=dt, u_min=act[0].low, u_max=act[0].high)
    index = (index_of(obs, "theta"), reference_index(obs, "theta"), index_of(obs, "fitness"))
    return NMESPID(dt, index, p, pid, options)
