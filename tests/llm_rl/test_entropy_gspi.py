import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrlbench.options import OptionError
from llm_rl.entropy_control import ENTROPY_CONTROLLERS, ControlConfig, make_entropy_controller
from llm_rl.entropy_gspi import GainScheduledPI, GSPIOptions


def make(setpoint=0.6, actuator="entropy_coef", **options):
    return make_entropy_controller(ControlConfig(name="gs-pi", actuator=actuator,
                                                 setpoint=setpoint, options=options))


def test_registered_lazily_with_its_options():
    assert ENTROPY_CONTROLLERS.options("gs-pi") is GSPIOptions
    assert isinstance(make(), GainScheduledPI)


def test_defaults_are_the_hand_pi():
    # gain_p 1, gain_i 0.1, no feed-forward, no schedule, symmetric: the pid default
    pid = make_entropy_controller(ControlConfig(name="pid", setpoint=0.6))
    c = make()
    for h in (0.5, 0.55, 0.58, 0.61, 0.45, 0.59):  # inside the limits (their anti-windup differs)
        assert c.update(h) == pytest.approx(pid.update(h))


def test_feed_forward_asymmetry_and_schedule_by_hand():
    c = make(gain_p=1.0, gain_i=0.1, u_ff=0.2, above_ratio=3.0)
    # below H* by 0.1: u = 0.2 + 0 + 1 x 0.1 = 0.3, then I = 0.01
    assert c.update(0.5) == pytest.approx(0.3)
    assert c.integral == pytest.approx(0.01)
    # above H* by 0.05, gains x3: u = 0.2 + 0.01 - 3 x 0.05 = 0.06, I = 0.01 - 0.015
    assert c.update(0.65) == pytest.approx(0.06)
    assert c.integral == pytest.approx(-0.005)
    s = make(gain_p=1.0, gain_i=0.0, sched_power=1.0, sched_max=4.0)
    assert s.schedule(0.3) == pytest.approx(2.0) and s.schedule(1.2) == pytest.approx(0.5)
    assert s.schedule(0.01) == 4.0 and s.schedule(0.6) == 1.0
    # at H = 0.3: e = 0.3, factor 2 -> u = 0.6
    assert s.update(0.3) == pytest.approx(0.6)


def test_conditional_integration_at_the_limits():
    c = make(gain_p=1.0, gain_i=0.5, u_high=0.2)
    assert c.update(0.0) == 0.2  # saturated high with e > 0: no integration
    assert c.integral == 0.0
    assert c.update(1.0) == 0.0  # saturated low with e < 0: no integration either
    assert c.integral == 0.0
    c.update(0.55)  # inside the limits: integrates 0.5 x 0.05
    assert c.integral == pytest.approx(0.025)


def test_outputs_within_limits_and_resume():
    readings = np.random.default_rng(1).uniform(0, 2, 40)
    kw = dict(gain_p=3.0, gain_i=0.5, u_ff=0.1, u_high=0.4, above_ratio=2.0, sched_power=1.0)
    a = make(**kw)
    full = [a.update(float(h)) for h in readings]
    assert all(0.0 <= u <= 0.4 for u in full)
    b = make(**kw)
    first = [b.update(float(h)) for h in readings[:15]]
    c = make(**kw)
    c.load_state_dict(b.state_dict())
    assert first + [c.update(float(h)) for h in readings[15:]] == full


def test_needs_the_bonus_actuator():
    with pytest.raises(OptionError, match=r"needs control\.actuator = 'entropy_coef'"):
        make(actuator="clip_cov_ratio")


@settings(max_examples=30, deadline=None)
@given(field=st.sampled_from(["gain_p", "gain_i", "u_high", "u_ff", "above_ratio",
                              "sched_power", "sched_max"]), pick=st.integers(0, 1))
def test_bad_options_name_the_field(field, pick):
    bad = {"gain_p": [-1.0, math.nan], "gain_i": [-0.1, math.inf], "u_high": [0.0, -1.0],
           "u_ff": [1.5, -0.1], "above_ratio": [0.5, math.nan], "sched_power": [-1.0, 5.0],
           "sched_max": [0.5, -2.0]}[field][pick]
    with pytest.raises(OptionError, match=f"control.{field}"):
        GSPIOptions(**{field: bad})
