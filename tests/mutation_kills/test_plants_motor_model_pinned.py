"""plants.motor.model pinned (kills mutmut's survivors): the models' signal tables, operating
points and output maps at non-default parameters."""

from dataclasses import astuple

import numpy as np
import pytest

import ctrlbench  # noqa: F401  (registers the plugins before plants.motor is imported)
from plants.motor.model import DCMotorParams, PMSMParams, dc_motor_model, pmsm_dq_model

INF = float("inf")


def _table(specs):
    return [astuple(s) for s in specs]


def test_dc_model_signals_meta_and_outputs():
    m = dc_motor_model(DCMotorParams(psi_e=0.2, i_max=150.0, omega_max=300.0))
    omega = ("omega", "rad/s", -300.0, 300.0, "mechanical speed", None)
    i = ("i", "A", -150.0, 150.0, "armature current", None)
    assert m.name == "dc_motor"
    assert _table(m.states) == [omega, i]
    assert _table(m.inputs) == [("duty", "1", -1.0, 1.0,
                                 "converter duty cycle, armature voltage/u_sup", None)]
    assert _table(m.outputs) == [omega, ("torque", "N*m", -INF, INF,
                                         "electrical torque psi_e * i", None), i]
    assert m.meta == {"source": "gym-electric-motor 3.0.3 DcPermanentlyExcitedMotor"}
    x_op, u_op = m.operating_point()
    assert x_op.tolist() == [0.0, 0.0] and u_op.tolist() == [0.0]
    # outputs (omega, psi_e i, i) at omega = 120 rad/s, i = 35 A
    np.testing.assert_allclose(m.h(np.array([120.0, 35.0]), np.array([0.3])), [120.0, 7.0, 35.0])
    assert dc_motor_model().params["i_max"] == 210.0


def test_pmsm_model_signals_meta_and_outputs():
    pr = PMSMParams(i_max=250.0)
    m = pmsm_dq_model(pr)
    d = ("i_sd", "A", -250.0, 250.0, "d-axis stator current", None)
    q = ("i_sq", "A", -250.0, 250.0, "q-axis stator current", None)
    assert m.name == "pmsm_dq"
    assert _table(m.states) == [d, q]
    assert _table(m.inputs) == [("u_sd_cmd", "1", -1.0, 1.0, "d-axis voltage / (2/3 u_sup)", None),
                                ("u_sq_cmd", "1", -1.0, 1.0, "q-axis voltage / (2/3 u_sup)", None)]
    assert _table(m.outputs) == [d, q, ("torque", "N*m", -INF, INF, "electrical torque", None)]
    assert m.meta == {"source": "gym-electric-motor 3.0.3 PermanentMagnetSynchronousMotor"}
    x_op, u_op = m.operating_point()
    assert x_op.tolist() == [0.0, 0.0] and u_op.tolist() == [0.0, 0.0]
    # torque 1.5 p (psi_p + (L_d - L_q) i_d) i_q at i_d = -20, i_q = 60
    t = 1.5 * 3.0 * (66e-3 + (0.37e-3 - 1.2e-3) * -20.0) * 60.0
    np.testing.assert_allclose(m.h(np.array([-20.0, 60.0]), np.zeros(2)), [-20.0, 60.0, t])
    assert pmsm_dq_model().params["i_max"] == pytest.approx(400.0)
