"""plants.nmes.model pinned (kills mutmut's survivors): the shank dynamics, static pulse, passive
equilibrium and operating point at a non-nominal patient, each against the formula of the module
docstring written out here; the model's meta, outputs and declared operating point."""

from __future__ import annotations

import math

import numpy as np
import pytest

import ctrlbench  # noqa: F401  (registers the plugins before plants.nmes is imported)
from plants.nmes.model import (
    MATH_OPS,
    NMESParams,
    nmes_dynamics,
    nmes_model,
    operating_point,
    passive_equilibrium,
    static_pulse,
)

# a patient with every parameter off its nominal value (tau != 1, G, fatigue times, ...)
PATIENT = NMESParams(J=0.41, m=4.6, l=0.245, B=0.35, lam=36.0, E=2.2, omega_s=2.8, tau=0.62,
                     G=46000.0, fit_min=0.4, T_fat=45.0, T_rec=260.0, emd=0.04)


def static_torque(theta: float, pr: NMESParams) -> float:
    """m g l sin(theta) - M_s(theta), M_s = -lam exp(-E phi)(phi - omega_s), phi = theta + pi/2."""
    phi = theta + math.pi / 2
    m_s = -pr.lam * math.exp(-pr.E * phi) * (phi - pr.omega_s)
    return pr.m * pr.g * pr.l * math.sin(theta) - m_s


def test_dynamics_at_a_non_nominal_state():
    theta, omega, m_a, fit, pulse_us = 0.4, -0.9, 7.5, 0.8, 230.0
    pr = PATIENT
    phi = theta + math.pi / 2
    m_s = -pr.lam * math.exp(-pr.E * phi) * (phi - pr.omega_s)
    torque = -pr.m * pr.g * pr.l * math.sin(theta) - pr.B * omega + m_s + fit * m_a
    a = m_a / (pr.G * 500e-6)
    fit_rate = (pr.fit_min - fit) * a / pr.T_fat + (1 - fit) * (1 - a) / pr.T_rec
    expected = [omega, torque / pr.J, (pr.G * pulse_us * 1e-6 - m_a) / pr.tau, fit_rate]
    got = nmes_dynamics([theta, omega, m_a, fit], [pulse_us], pr.as_dict(), MATH_OPS)
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    np.testing.assert_allclose(nmes_model(PATIENT).f([theta, omega, m_a, fit], [pulse_us]),
                               expected, rtol=1e-13)


def test_static_pulse_is_the_torque_balance_in_microseconds():
    theta = 0.7
    expected = static_torque(theta, PATIENT) / (0.6 * PATIENT.G) * 1e6
    assert static_pulse(theta, PATIENT, fitness=0.6) == pytest.approx(expected, rel=1e-13)
    nominal = NMESParams()
    assert static_pulse(theta, nominal) == pytest.approx(
        static_torque(theta, nominal) / nominal.G * 1e6, rel=1e-13)  # fitness 1 by default
    assert 100.0 < static_pulse(theta, PATIENT, fitness=0.6) < 500.0  # a plausible pulse


@pytest.mark.parametrize("omega_s, side", [(2.95, "above"), (0.35, "below")])
def test_passive_equilibrium_anywhere_in_the_half_circle(omega_s, side):
    # almost no gravity (m = 1 g): the rest angle is near omega_s - pi/2, outside [-pi/3, pi/3]
    pr = NMESParams(m=0.001, omega_s=omega_s)
    theta = passive_equilibrium(pr)
    assert (theta > math.pi / 3) if side == "above" else (theta < -math.pi / 3)
    assert abs(static_torque(theta, pr)) < 1e-11
    assert theta == pytest.approx(omega_s - math.pi / 2, abs=0.05)


def test_passive_equilibrium_of_a_patient_is_the_root_of_the_static_torque():
    theta = passive_equilibrium(PATIENT)
    assert abs(static_torque(theta, PATIENT)) < 1e-11
    assert static_torque(theta - 1e-6, PATIENT) < 0 < static_torque(theta + 1e-6, PATIENT)
    assert passive_equilibrium(PATIENT) != pytest.approx(passive_equilibrium(), abs=1e-3)


def bisect_to_the_last_float(f, a: float, b: float) -> float:
    """The root of ``f`` on ``[a, b]`` (a sign change) by bisection down to adjacent floats."""
    fa = f(a)
    while True:
        mid = (a + b) / 2
        if mid in (a, b):
            return mid
        if (f(mid) > 0) == (fa > 0):
            a, fa = mid, f(mid)
        else:
            b = mid


def test_passive_equilibrium_is_accurate_to_its_tolerance_1e_14():
    # a patient where brentq's default xtol (2e-12) stops 4.6e-13 rad short of the root
    pr = NMESParams(m=4.63, l=0.188, lam=37.9, E=2.46, omega_s=2.86)
    root = bisect_to_the_last_float(lambda th: -static_torque(th, pr), -math.pi / 2, math.pi / 2)
    assert abs(passive_equilibrium(pr) - root) < 2e-14


def steady_fitness(m_a: float, pr: NMESParams) -> float:
    a = m_a / (pr.G * 500e-6)
    return ((pr.fit_min * a / pr.T_fat + (1 - a) / pr.T_rec)
            / (a / pr.T_fat + (1 - a) / pr.T_rec))


@pytest.mark.parametrize("theta_deg", [25.0, 40.0])
def test_operating_point_is_a_steady_state_of_the_patient(theta_deg):
    (theta, omega, m_a, fit), (u,) = operating_point(PATIENT, theta_deg)
    assert theta == math.radians(theta_deg) and omega == 0.0
    assert fit == pytest.approx(steady_fitness(m_a, PATIENT), rel=1e-12)
    assert fit * m_a == pytest.approx(static_torque(theta, PATIENT), rel=1e-10)
    assert u == pytest.approx(m_a / PATIENT.G * 1e6, rel=1e-13)
    np.testing.assert_allclose(
        nmes_dynamics([theta, omega, m_a, fit], [u], PATIENT.as_dict(), MATH_OPS),
        [0.0, 0.0, 0.0, 0.0], atol=1e-9)


def test_operating_point_defaults_to_35_degrees_of_the_nominal_patient():
    (theta, _, m_a, fit), _ = operating_point()
    assert theta == math.radians(35.0)
    assert fit * m_a == pytest.approx(static_torque(theta, NMESParams()), rel=1e-10)


def test_operating_point_just_above_the_passive_equilibrium_needs_under_1_n_m():
    theta_eq = passive_equilibrium(PATIENT)
    theta_deg = math.degrees(theta_eq) + 0.5
    (_, _, m_a, fit), _ = operating_point(PATIENT, theta_deg)
    assert 0.0 < m_a < 1.0
    assert fit * m_a == pytest.approx(static_torque(math.radians(theta_deg), PATIENT), rel=1e-9)


def test_model_meta_outputs_and_declared_operating_point():
    m = nmes_model(PATIENT, theta_op_deg=48.0)
    assert m.meta == {
        "source": "MODELS.md section 5 (Ferrarin & Pedotti 2000 via Arcolezi et al. 2020); "
                  "fatigue Riener 1996 style (unverified)",
        "time_unit": "s", "mismatch": "no electromechanical delay (plant: 0.04 s)"}
    assert [s.name for s in m.outputs] == ["theta"]
    x = [0.3, -1.2, 5.0, 0.9]
    np.testing.assert_array_equal(m.h(x, [100.0]), [0.3])
    x_op, u_op = m.operating_point()
    want_x, want_u = operating_point(PATIENT, 48.0)
    np.testing.assert_array_equal(x_op, want_x)
    np.testing.assert_array_equal(u_op, want_u)
    assert x_op[0] == math.radians(48.0)
    x0, _ = nmes_model().operating_point()
    assert x0[0] == math.radians(35.0)
