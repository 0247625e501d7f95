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


# -- PMSM current PI: the tuned factors on the technical-optimum gains (issue 15) ------------
def _pmsm(**scales):
    from controllers.motor_pi import PMSMCurrentPI
    from plants.motor.model import pmsm_dq_model

    return PMSMCurrentPI(DT, pmsm_dq_model(), (0, 1, 2, 3, 4), 2e-4, **scales)


def test_pmsm_scales_multiply_each_designed_gain_apart():
    from plants.motor.model import pmsm_dq_model

    p = pmsm_dq_model().params
    volts = 2.0 / 3.0 * p["u_sup"]
    kp = np.array([p["l_d"], p["l_q"]]) / (2 * 2e-4) / volts      # L / (2 T_s), per unit
    ki = np.array([p["r_s"], p["r_s"]]) / (2 * 2e-4) / volts      # R / (2 T_s), per unit
    plain = _pmsm()
    assert plain.pid.kp == pytest.approx(kp, rel=1e-12)
    assert plain.pid.ki == pytest.approx(ki, rel=1e-12)
    tuned = _pmsm(kp_scale=1.92, ki_scale=0.96)
    assert tuned.pid.kp == pytest.approx(1.92 * kp, rel=1e-12)
    assert tuned.pid.ki == pytest.approx(0.96 * ki, rel=1e-12)


def test_pmsm_scale_options_default_to_one_and_name_their_range():
    from controllers.motor_pi import PMSMCurrentPIOptions
    from ctrlbench.options import OptionError

    opts = PMSMCurrentPIOptions()
    assert (opts.kp_scale, opts.ki_scale) == (1.0, 1.0)
    assert PMSMCurrentPIOptions(kp_scale=100.0, ki_scale=100.0).kp_scale == 100.0
    for name in ("kp_scale", "ki_scale"):
        for bad in (0.0, 100.0 + 1e-9):
            with pytest.raises(OptionError, match=name + r".*valid: finite > 0 and <= 100"):
                PMSMCurrentPIOptions(**{name: bad})


def test_pmsm_design_passes_each_scale_to_its_gain():
    from ctrlbench.registry import make_controller, make_plant

    plant = make_plant("ctrlbench/PMSMCurrent-v0", reference="step")
    try:
        base = make_controller("pid", plant)
        tuned = make_controller("pid", plant, kp_scale=1.5, ki_scale=0.5)
    finally:
        plant.close()
    assert tuned.pid.kp == pytest.approx(1.5 * base.pid.kp, rel=1e-12)
    assert tuned.pid.ki == pytest.approx(0.5 * base.pid.ki, rel=1e-12)
