"""controllers.motor_pi pinned at hand-derived values (kills mutmut's survivors).

DC cascade at dt = T_sigma = 1e-4 s, a = 3 (not the default 4), GEM's DC motor: current loop
``kp = L_a / (2 T_s) / u_sup``, speed loop ``kp = 1 / (a (psi_e / J) 2 T_s)``, EMF feed-forward
``psi_e w / u_sup``.
"""

import numpy as np
import pytest

import ctrlbench  # noqa: F401  (registers the plugins before plants.motor is imported)
from controllers.motor_pi import DCSpeedCascadePI, DCSpeedPIOptions
from plants.motor.model import dc_motor_model

DT = 1e-4
MODEL = dc_motor_model()
P = MODEL.params


def _ctrl(**kw):
    return DCSpeedCascadePI(DT, MODEL, (0, 1, 2), DCSpeedPIOptions(t_sigma=DT, a=3.0, **kw))


def test_dc_cascade_limits_and_prefilter():
    c = _ctrl(current_limit=120.0)
    assert (float(c.speed.u_min), float(c.speed.u_max)) == (-120.0, 120.0)
    assert (float(c.current.u_min), float(c.current.u_max)) == (-1.0, 1.0)
    assert c._alpha == pytest.approx(DT / (9 * 2 * DT + DT))  # prefilter a^2 2 T_s
    assert _ctrl(prefilter=False)._alpha == 1.0
    assert float(_ctrl().speed.u_max) == pytest.approx(0.9 * P["i_max"])


def test_dc_cascade_first_step():
    c = _ctrl(prefilter=False)
    w, i, r = 50.0, 10.0, 50.1
    kp_s = 1 / (3 * (P["psi_e"] / P["j_total"]) * 2 * DT)
    i_ref = kp_s * (r - w)  # 25.3 A, inside the 189 A limit
    kp_c = P["l_a"] / (2 * DT) / P["u_sup"]
    duty = kp_c * (i_ref - i) + P["psi_e"] * w / P["u_sup"]
    assert c.compute(np.array([w, i, r])) == pytest.approx([duty], rel=1e-12)
