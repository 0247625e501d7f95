"""controllers.nmes_pid pinned (kills mutmut's survivors): the IMC gains and the design's
linearization at a non-nominal patient against the formulas written out by hand, the reference
model against the closed-form step response of ``w^3 / (s + w)^3``, the model-inverting
feed-forward against its formula, and each switch of ``compute``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import ctrlbench  # noqa: F401  (registers the plugins)
from controllers.nmes_pid import (
    NMESPID,
    NMESPIDOptions,
    ReferenceModel,
    design_nmes_pid,
    imc_resonant_pi,
)
from controllers.pid import PID
from ctrlbench.registry import make_plant
from plants.nmes.model import NMESParams, nmes_model

PATIENT = NMESParams(J=0.41, m=4.6, l=0.245, B=0.35, lam=36.0, E=2.2, omega_s=2.8, tau=0.62,
                     G=46000.0, fit_min=0.4, T_fat=45.0, T_rec=260.0, emd=0.04)


def test_imc_gains_by_hand_and_each_argument_checked():
    g = imc_resonant_pi(0.004, 0.8, 4.0, 0.1, 3.0)
    lam = 3.0 / (2 * 0.1 * 4.0)  # 3.75 s
    assert g.kp == pytest.approx(0.8 / (0.004 * lam), rel=1e-14)
    assert g.ki == pytest.approx(g.kp / 0.8, rel=1e-14) and g.t_equiv == pytest.approx(lam)
    args = {"gain": 0.004, "tau": 0.8, "w_n": 4.0, "zeta": 0.1, "gain_margin": 3.0}
    for name in args:
        with pytest.raises(ValueError, match=rf"^{name} must be positive and finite, got -1\.0$"):
            imc_resonant_pi(**{**args, name: -1.0})


def dms_dtheta(th: float, p: NMESParams) -> float:
    """d/dtheta of M_s = -lam exp(-E phi)(phi - omega_s), phi = theta + pi/2."""
    phi = th + math.pi / 2
    return -p.lam * math.exp(-p.E * phi) * (1 - p.E * (phi - p.omega_s))


def test_design_linearizes_the_given_model_at_the_design_angle():
    plant = make_plant("ctrlbench/NMESKnee-v0")
    ctrl = design_nmes_pid(plant, nmes_model(PATIENT),
                           NMESPIDOptions(theta_design_deg=40.0, gain_margin=3.0))
    th = math.radians(40.0)
    p = PATIENT
    stiffness = p.m * p.g * p.l * math.cos(th) - dms_dtheta(th, p)  # N m / rad
    w_n = math.sqrt(stiffness / p.J)
    zeta = p.B / (2 * p.J * w_n)
    gain = p.G * 1e-6 / stiffness  # rad/us
    lam = 3.0 / (2 * zeta * w_n)
    kp = p.tau / (gain * lam)
    assert float(ctrl.pid.kp) == pytest.approx(kp, rel=1e-6)
    assert float(ctrl.pid.ki) == pytest.approx(kp / p.tau, rel=1e-6)
    assert float(ctrl.pid.u_min) == 0.0 and float(ctrl.pid.u_max) == 500.0
    assert ctrl.p["emd"] == 0.04


def step_response(t: float, theta0: float, ref: float, w: float) -> tuple[float, ...]:
    """theta_m and its first three derivatives at t for w^3/(s+w)^3 from rest at theta0."""
    d, e = ref - theta0, math.exp(-w * t)
    return (ref - d * e * (1 + w * t + (w * t) ** 2 / 2),
            d * w**3 * t**2 * e / 2,
            d * w**3 * e * (t - w * t**2 / 2),
            d * w**3 * e * (1 - 2 * w * t + (w * t) ** 2 / 2))


def test_reference_model_is_the_triple_pole_step_response():
    fresh = ReferenceModel(3.0, 0.05)  # at rest at 0, no lead by default
    np.testing.assert_allclose(fresh.derivatives(0.8), step_response(0.0, 0.0, 0.8, 3.0),
                               rtol=1e-12, atol=1e-14)
    rm = ReferenceModel(3.0, 0.05, lead=0.07)
    rm.reset(0.3)
    np.testing.assert_allclose(rm.derivatives(0.8), step_response(0.07, 0.3, 0.8, 3.0),
                               rtol=1e-10, atol=1e-13)
    rm.advance(0.8)
    rm.advance(0.8)
    np.testing.assert_allclose(rm.derivatives(0.8), step_response(0.17, 0.3, 0.8, 3.0),
                               rtol=1e-10, atol=1e-13)


def pulse_by_hand(th: float, dth: float, ddth: float, dddth: float, fit: float,
                  p: NMESParams) -> float:
    phi = th + math.pi / 2
    m_s = -p.lam * math.exp(-p.E * phi) * (phi - p.omega_s)
    mgl = p.m * p.g * p.l
    torque = p.J * ddth + p.B * dth + mgl * math.sin(th) - m_s
    d_torque = p.J * dddth + p.B * ddth + (mgl * math.cos(th) - dms_dtheta(th, p)) * dth
    return (torque + p.tau * d_torque) / (fit * p.G) * 1e6


DT = 0.02


def controller(kd: float = 0.0, **opts: Any) -> NMESPID:
    pid = PID(30.0, 40.0, kd, dt=DT, u_min=-1e9, u_max=1e9)
    return NMESPID(DT, (0, 1, 2), dict(nmes_model(PATIENT).params), pid, NMESPIDOptions(**opts))


def pi_output(e: float, ff: float) -> float:
    return PID(30.0, 40.0, dt=DT, u_min=-1e9, u_max=1e9).update(e, feedforward=ff)


def test_feedforward_by_hand():
    c = controller()
    got = c._pulse_ff(0.6, -0.8, 1.7, -4.0, 0.7)
    assert got == pytest.approx(pulse_by_hand(0.6, -0.8, 1.7, -4.0, 0.7, PATIENT), rel=1e-12)


def test_first_step_starts_the_reference_model_at_the_measured_angle():
    c = controller()
    theta, ref, fit = 0.3, 0.8, 0.75
    u = float(c.compute(np.array([theta, ref, fit]))[0])
    lead = DT / 2 + 0.04  # half a period plus the model's electromechanical delay
    target, d1, d2, d3 = step_response(lead, theta, ref, 5.0)
    ff = pulse_by_hand(target, d1, d2, d3, fit, PATIENT)
    assert u == pytest.approx(pi_output(target - theta, ff), rel=1e-9)
    # after reset the model restarts at the next measured angle
    c.compute(np.array([0.35, ref, fit]))
    c.reset()
    u = float(c.compute(np.array([0.1, ref, fit]))[0])
    target, d1, d2, d3 = step_response(lead, 0.1, ref, 5.0)
    assert u == pytest.approx(pi_output(target - 0.1, pulse_by_hand(target, d1, d2, d3, fit,
                                                                     PATIENT)), rel=1e-9)


@pytest.mark.parametrize("observed, used", [(1.5, 1.0), (0.05, 0.1), (0.6, 0.6)])
def test_fitness_scheduling_clips_the_observed_fitness(observed, used):
    c = controller(ref_bandwidth=None)
    u = float(c.compute(np.array([0.3, 0.5, observed]))[0])
    assert u == pytest.approx(pi_output(0.2, pulse_by_hand(0.5, 0, 0, 0, used, PATIENT)),
                              rel=1e-12)


def test_without_scheduling_the_fitness_is_one_and_without_feedforward_none():
    c = controller(ref_bandwidth=None, fitness_scheduling=False)
    u = float(c.compute(np.array([0.3, 0.5, 0.6]))[0])
    assert u == pytest.approx(pi_output(0.2, pulse_by_hand(0.5, 0, 0, 0, 1.0, PATIENT)),
                              rel=1e-12)
    c = controller(ref_bandwidth=None, feedforward=False)
    assert float(c.compute(np.array([0.3, 0.5, 0.6]))[0]) == pytest.approx(pi_output(0.2, 0.0),
                                                                            rel=1e-14)


def test_the_derivative_acts_on_the_measured_angle():
    # with a D term (kd = 2) the PID differentiates the measurement, not the error: the moving
    # reference model must not kick it
    c = controller(kd=2.0, feedforward=False)
    ref_pid = PID(30.0, 40.0, 2.0, dt=DT, u_min=-1e9, u_max=1e9)
    rm = ReferenceModel(5.0, DT, DT / 2 + 0.04)
    rm.reset(0.3)
    for theta in (0.3, 0.31, 0.33):
        target = rm.derivatives(0.8)[0]
        rm.advance(0.8)
        want = ref_pid.update(target - theta, measurement=theta)
        assert float(c.compute(np.array([theta, 0.8, 1.0]))[0]) == pytest.approx(want, rel=1e-12)


def test_lead_is_half_a_period_when_the_model_has_no_delay():
    params = {k: v for k, v in nmes_model(PATIENT).params.items() if k != "emd"}
    pid = PID(30.0, 40.0, dt=DT, u_min=-1e9, u_max=1e9)
    c = NMESPID(DT, (0, 1, 2), params, pid, NMESPIDOptions(feedforward=False))
    u = float(c.compute(np.array([0.3, 0.8, 1.0]))[0])
    target = step_response(DT / 2, 0.3, 0.8, 5.0)[0]
    assert u == pytest.approx(pi_output(target - 0.3, 0.0), rel=1e-10)
