import math

import numpy as np
import pytest

from controllers.pid import PID
from llm_rl.entropy_control import (
    CONTROLLER_USES,
    CONTROLLERS,
    ControlConfig,
    ExtraRollout,
    make_controller,
)


def test_constant_is_open_loop():
    c = make_controller(ControlConfig(value=0.01))
    assert [c.update(h) for h in (2.0, 0.1, 0.5)] == [0.01, 0.01, 0.01]
    assert c.extra_rollout() is None


def test_sign_integrator_steps_and_gating():
    c = make_controller(ControlConfig(name="sign", setpoint=0.5, delta=0.01, u_max=0.025))
    assert c.update(0.4) == pytest.approx(0.01)  # below target: +delta, applied
    assert c.update(0.4) == pytest.approx(0.02)
    assert c.update(0.4) == pytest.approx(0.025)  # clipped at u_max
    assert c.update(0.6) == 0.0  # above target: not applied ...
    assert c.alpha == pytest.approx(0.015)  # ... while alpha steps down


def test_pid_controller_reuses_controllers_pid():
    cfg = ControlConfig(name="pid", setpoint=0.6, kp=0.3, ki=0.05, kd=0.1, u_max=0.2)
    c = make_controller(cfg)
    ref = PID(0.3, 0.05, 0.1, dt=1.0, u_min=0.0, u_max=0.2)
    ref.reset(u0=0.0)
    for h in [0.9, 0.7, 0.5, 0.3, 0.2, 0.4, 0.65]:
        assert c.update(h) == pytest.approx(ref.update(0.6 - h, measurement=h))
    assert c.value > 0  # entropy below target most of the time -> positive bonus


def test_pid_state_roundtrip():
    cfg = ControlConfig(name="pid", setpoint=0.6, kp=0.3, ki=0.05, u_max=0.2)
    a = make_controller(cfg)
    for h in [0.5, 0.4]:
        a.update(h)
    b = make_controller(cfg)
    b.load_state_dict(a.state_dict())
    assert [a.update(h) for h in (0.3, 0.7)] == [b.update(h) for h in (0.3, 0.7)]


def test_dual_ascent_on_log_alpha():
    c = make_controller(ControlConfig(name="dual", setpoint=0.5, value=0.01, lr=0.2, u_max=1.0))
    out = c.update(0.3)  # log_alpha += .2 * (.5 - .3)
    assert out == pytest.approx(0.01 * math.exp(0.04))
    out = c.update(1.5)
    assert out == pytest.approx(0.01 * math.exp(0.04 - 0.2))
    with pytest.raises(ValueError, match="value > 0"):
        make_controller(ControlConfig(name="dual", value=0.0))


def test_aepo_switches_temperature_and_splice_cap():
    cfg = ControlConfig(name="aepo", actuator="temperature", setpoint=0.5, aepo_max_splice=60)
    c = make_controller(cfg)
    assert c.update(0.4) == 1.2
    assert c.extra_rollout() == ExtraRollout(temperature=1.2, fraction=0.25, max_splice=60)
    assert c.update(0.9) == 0.8
    assert c.extra_rollout().max_splice == 30
    with pytest.raises(ValueError, match="temperature"):
        make_controller(ControlConfig(name="aepo"))


def test_registry_and_validation_errors():
    with pytest.raises(KeyError, match="aepo, constant, dual, pid, sign"):
        make_controller(ControlConfig(name="bangbang"))
    with pytest.raises(ValueError, match="entropy_coef, temperature, clip_cov_ratio"):
        make_controller(ControlConfig(actuator="lr"))
    with pytest.raises(ValueError, match="finite"):
        make_controller(ControlConfig()).update(float("nan"))
    assert set(CONTROLLERS.names()) == {"aepo", "constant", "dual", "pid", "sign"}


@pytest.mark.parametrize("name", ["constant", "sign", "pid", "dual"])
def test_outputs_stay_within_limits(name):
    kw = dict(setpoint=0.6, value=0.01, u_min=0.0, u_max=0.05, delta=0.02, kp=5.0, ki=5.0, lr=5.0)
    c = make_controller(ControlConfig(
        name=name, **{k: v for k, v in kw.items() if k in CONTROLLER_USES[name]}))
    rng = np.random.default_rng(0)
    for h in rng.uniform(0, 2, 50):
        assert 0.0 <= c.update(float(h)) <= 0.05 + 1e-12


def test_controllers_reject_fields_they_ignore():
    with pytest.raises(TypeError, match=r"'constant' ignores control field\(s\) \['kp'\]"):
        make_controller(ControlConfig(name="constant", kp=9.0))
    with pytest.raises(TypeError, match=r"ignores control field\(s\) \['value'\].*t_high"):
        make_controller(ControlConfig(name="aepo", actuator="temperature", value=0.5))
    make_controller(ControlConfig(name="pid", kp=9.0))  # pid reads kp
    for name, uses in CONTROLLER_USES.items():
        assert {"name", "actuator", "setpoint"} <= uses, name


@pytest.mark.parametrize(
    ("kw", "bad"),
    [({"name": "pid"}, "control.value = 0.0"),  # the defaults would give T = 0
     ({"name": "pid", "value": 1.0}, "control.u_min = 0.0"),
     ({"name": "constant"}, "control.value = 0.0"),
     ({"name": "sign", "value": 1.0, "u_min": -0.5, "u_max": 2.0}, "control.u_min = -0.5")],
)
def test_temperature_actuator_needs_positive_temperatures(kw, bad):
    with pytest.raises(ValueError, match=bad):
        make_controller(ControlConfig(actuator="temperature", **kw))
    c = make_controller(ControlConfig(name="pid", actuator="temperature", value=1.0, u_min=0.5,
                                      u_max=1.5))
    assert c.value == 1.0


def test_initial_value_is_clipped_to_limits():
    c = make_controller(ControlConfig(name="dual", value=1.0, u_min=1e-3, u_max=0.1))
    assert c.log_alpha == pytest.approx(math.log(0.1)) and c.value == pytest.approx(0.1)
    c = make_controller(ControlConfig(name="dual", value=1e-5, u_min=1e-3, u_max=0.1))
    assert c.log_alpha == pytest.approx(math.log(1e-3))
    assert c.update(c.setpoint) == pytest.approx(1e-3)  # zero error: stays at the bound
    for name in ("sign", "pid"):
        assert make_controller(ControlConfig(name=name, value=1.0, u_max=0.1)).value == 0.1


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"setpoint": 0.0}, r"ControlConfig.setpoint = 0.0 .*finite > 0"),
     ({"u_min": 1.0, "u_max": 0.5}, r"ControlConfig.u_max = 0.5 .*>= u_min \(1.0\)"),
     ({"kp": -1.0}, r"ControlConfig.kp = -1.0"),
     ({"aepo_fraction": 0.0}, r"aepo_fraction = 0.0 .*\(0, 1\]"),
     ({"value": float("nan")}, "ControlConfig.value = nan")],
)
def test_control_config_ranges(kw, match):
    with pytest.raises(ValueError, match=match):
        ControlConfig(**kw)
