import math

import numpy as np
import pytest

from controllers.pid import PID
from ctrlbench.options import OptionError
from llm_rl.entropy_control import (
    ENTROPY_CONTROLLERS,
    AEPOOptions,
    ConstantOptions,
    ControlConfig,
    DualOptions,
    ExtraRollout,
    PIDOptions,
    SignOptions,
    make_entropy_controller,
)


def make(name="constant", actuator="entropy_coef", setpoint=0.6, **options):
    return make_entropy_controller(
        ControlConfig(name=name, actuator=actuator, setpoint=setpoint, options=options))


def test_constant_is_open_loop():
    c = make(value=0.01)
    assert [c.update(h) for h in (2.0, 0.1, 0.5)] == [0.01, 0.01, 0.01]
    assert c.extra_rollout() is None


def test_sign_integrator_steps_and_gating():
    c = make("sign", setpoint=0.5, delta=0.01, u_max=0.025)
    assert c.update(0.4) == pytest.approx(0.01)  # below target: +delta, applied
    assert c.update(0.4) == pytest.approx(0.02)
    assert c.update(0.4) == pytest.approx(0.025)  # clipped at u_max
    assert c.update(0.6) == 0.0  # above target: not applied ...
    assert c.alpha == pytest.approx(0.015)  # ... while alpha steps down


def test_pid_controller_reuses_controllers_pid():
    c = make("pid", setpoint=0.6, kp=0.3, ki=0.05, kd=0.1, u_max=0.2)
    ref = PID(0.3, 0.05, 0.1, dt=1.0, u_min=0.0, u_max=0.2)
    ref.reset(u0=0.0)
    for h in [0.9, 0.7, 0.5, 0.3, 0.2, 0.4, 0.65]:
        assert c.update(h) == pytest.approx(ref.update(0.6 - h, measurement=h))
    assert c.value > 0  # entropy below target most of the time -> positive bonus


def test_pid_state_roundtrip():
    cfg = ControlConfig(name="pid", setpoint=0.6, options={"kp": 0.3, "ki": 0.05, "u_max": 0.2})
    a = make_entropy_controller(cfg)
    for h in [0.5, 0.4]:
        a.update(h)
    b = make_entropy_controller(cfg)
    b.load_state_dict(a.state_dict())
    assert [a.update(h) for h in (0.3, 0.7)] == [b.update(h) for h in (0.3, 0.7)]


def test_dual_ascent_on_log_alpha():
    c = make("dual", setpoint=0.5, value=0.01, lr=0.2, u_max=1.0)
    out = c.update(0.3)  # log_alpha += .2 * (.5 - .3)
    assert out == pytest.approx(0.01 * math.exp(0.04))
    out = c.update(1.5)
    assert out == pytest.approx(0.01 * math.exp(0.04 - 0.2))
    with pytest.raises(ValueError, match="value > 0"):
        make("dual", value=0.0)


def test_dual_defaults_are_the_original_dual_ascent():
    # the runaway protection is off by default: old dual results reproduce
    o = DualOptions()
    assert (o.kp_log, o.down_ratio, o.cut_above) == (0.0, 1.0, 0.0)
    old = make("dual", setpoint=0.6, value=0.01, lr=0.15, u_min=1e-3, u_max=0.15)
    log_alpha = math.log(0.01)
    for h in np.random.default_rng(0).uniform(0, 3, 40):
        log_alpha = min(max(log_alpha + 0.15 * (0.6 - h), math.log(1e-3)), math.log(0.15))
        assert old.update(float(h)) == pytest.approx(math.exp(log_alpha), rel=1e-12)


def test_dual_runaway_protection():
    kw = dict(setpoint=0.6, value=0.1, lr=0.3, u_min=1e-3, u_max=1.0)
    p = make("dual", kp_log=6.0, **kw)  # PI on log alpha: an overshoot cuts alpha at once
    assert p.update(0.8) == pytest.approx(0.1 * math.exp(-0.3 * 0.2 - 6.0 * 0.2))
    d = make("dual", down_ratio=3.0, **kw)  # 3x faster down than up
    assert d.update(0.8) == pytest.approx(0.1 * math.exp(-0.9 * 0.2))
    assert d.update(0.4) == pytest.approx(0.1 * math.exp(-0.9 * 0.2 + 0.3 * 0.2))
    c = make("dual", cut_above=0.5, **kw)  # bonus cut while H > 0.9
    assert c.update(1.0) == 1e-3 and c.log_alpha == pytest.approx(math.log(0.1) - 0.3 * 0.4)
    assert c.update(0.6) == pytest.approx(math.exp(c.log_alpha))
    # conditional integration: no windup while the output sits at u_max
    w = make("dual", kp_log=6.0, **{**kw, "value": 1.0})
    for _ in range(20):
        assert w.update(0.1) == pytest.approx(1.0)
    assert w.log_alpha == pytest.approx(0.0)
    assert w.update(0.7) == pytest.approx(math.exp(-0.3 * 0.1 - 6.0 * 0.1))
    with pytest.raises(ValueError, match=r"control\.down_ratio = 0\.5"):
        make("dual", down_ratio=0.5)


def test_aepo_switches_temperature_and_splice_cap():
    c = make("aepo", actuator="temperature", setpoint=0.5, aepo_max_splice=60)
    assert c.update(0.4) == 1.2
    assert c.extra_rollout() == ExtraRollout(temperature=1.2, fraction=0.25, max_splice=60)
    assert c.update(0.9) == 0.8
    assert c.extra_rollout().max_splice == 30
    with pytest.raises(ValueError, match="temperature"):
        make("aepo")


def test_registry_and_validation_errors():
    with pytest.raises(KeyError, match="valid entropy controller names: aepo, constant, dual, "
                                       "gs-pi, nmpc, pid, prbs, sign, steps"):
        ControlConfig(name="bangbang")
    with pytest.raises(ValueError, match="'entropy_coef', 'temperature', 'clip_cov_ratio'"):
        ControlConfig(actuator="lr")
    with pytest.raises(ValueError, match="finite"):
        make().update(float("nan"))
    assert ENTROPY_CONTROLLERS.names() == ["aepo", "constant", "dual", "gs-pi", "nmpc", "pid",
                                           "prbs", "sign", "steps"]
    # its own name: ctrlbench.registry.CONTROLLERS holds the plant controllers
    from ctrlbench.registry import CONTROLLERS

    assert ENTROPY_CONTROLLERS is not CONTROLLERS


@pytest.mark.parametrize("name", ["constant", "sign", "pid", "dual"])
def test_outputs_stay_within_limits(name):
    kw = dict(value=0.01, u_min=0.0, u_max=0.05, delta=0.02, kp=5.0, ki=5.0, lr=5.0)
    fields = ENTROPY_CONTROLLERS.options(name).__dataclass_fields__
    c = make(name, setpoint=0.6, **{k: v for k, v in kw.items() if k in fields})
    rng = np.random.default_rng(0)
    for h in rng.uniform(0, 2, 50):
        assert 0.0 <= c.update(float(h)) <= 0.05 + 1e-12


def test_each_controller_has_its_own_options_class():
    from llm_rl.entropy_gspi import GSPIOptions
    from llm_rl.entropy_mpc import NMPCOptions
    from llm_rl.excitation import PRBSOptions, StepsOptions

    assert {n: ENTROPY_CONTROLLERS.options(n) for n in ENTROPY_CONTROLLERS.names()} == {
        "constant": ConstantOptions, "sign": SignOptions, "pid": PIDOptions, "dual": DualOptions,
        "aepo": AEPOOptions, "prbs": PRBSOptions, "steps": StepsOptions, "nmpc": NMPCOptions,
        "gs-pi": GSPIOptions}
    assert ControlConfig().options == ConstantOptions(value=0.0)
    cfg = ControlConfig(name="pid", options={"kp": 9})
    assert cfg.options == PIDOptions(kp=9.0) and make_entropy_controller(cfg).pid.kp == 9.0


def test_pid_defaults_are_the_tuned_pi():
    # studies/README.md: PI kp 1.0, ki 0.1 (tuned on seed 1), bonus in [0, 1]
    assert PIDOptions() == PIDOptions(value=0.0, u_min=0.0, u_max=1.0, kp=1.0, ki=0.1, kd=0.0)
    c = make("pid")
    assert (c.pid.kp, c.pid.ki, c.pid.kd) == (1.0, 0.1, 0.0)
    ref = PID(1.0, 0.1, 0.0, dt=1.0, u_min=0.0, u_max=1.0)
    ref.reset(u0=0.0)
    outs = [c.update(h) for h in (0.0, 0.0, 0.3, 0.9)]
    assert outs == pytest.approx([ref.update(0.6 - h, measurement=h) for h in (0.0, 0.0, 0.3, 0.9)])
    assert outs[0] == pytest.approx(0.6) and outs[1] > 0.6  # P term 1.0 x 0.6, then I adds


def test_controllers_reject_options_they_do_not_take():
    with pytest.raises(OptionError, match=r"entropy controller 'constant' got unknown option\(s\) "
                                          r"\['kp'\]; valid options: \['value'\]"):
        ControlConfig(name="constant", options={"kp": 9.0})
    with pytest.raises(OptionError, match=r"'aepo' got unknown option\(s\) \['value'\].*t_high"):
        ControlConfig(name="aepo", actuator="temperature", options={"value": 0.5})
    with pytest.raises(OptionError, match="entropy controller 'sign' takes SignOptions, got "
                                          "PIDOptions"):
        ControlConfig(name="sign", options=PIDOptions())


@pytest.mark.parametrize(
    ("kw", "bad"),
    [({"name": "pid"}, "control.value = 0.0"),  # the defaults would give T = 0
     ({"name": "pid", "value": 1.0}, "control.u_min = 0.0"),
     ({"name": "constant"}, "control.value = 0.0"),
     ({"name": "sign", "value": 1.0, "u_min": -0.5, "u_max": 2.0}, "control.u_min = -0.5")],
)
def test_temperature_actuator_needs_positive_temperatures(kw, bad):
    with pytest.raises(ValueError, match=bad):
        make(actuator="temperature", **kw)
    c = make("pid", actuator="temperature", value=1.0, u_min=0.5, u_max=1.5)
    assert c.value == 1.0


def test_initial_value_is_clipped_to_limits():
    c = make("dual", value=1.0, u_min=1e-3, u_max=0.1)
    assert c.log_alpha == pytest.approx(math.log(0.1)) and c.value == pytest.approx(0.1)
    c = make("dual", value=1e-5, u_min=1e-3, u_max=0.1)
    assert c.log_alpha == pytest.approx(math.log(1e-3))
    assert c.update(c.setpoint) == pytest.approx(1e-3)  # zero error: stays at the bound
    for name in ("sign", "pid"):
        assert make(name, value=1.0, u_max=0.1).value == 0.1


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"setpoint": 0.0}, r"control.setpoint = 0.0 is out of range; valid: finite > 0"),
     ({"name": "pid", "options": {"u_min": 1.0, "u_max": 0.5}},
      r"control.u_max = 0.5 is out of range; valid: >= u_min \(1.0\)"),
     ({"name": "pid", "options": {"kp": -1.0}},
      r"control.kp = -1.0 is out of range; valid: finite >= 0"),
     ({"name": "aepo", "actuator": "temperature", "options": {"aepo_fraction": 0.0}},
      r"control.aepo_fraction = 0.0 is out of range; valid: finite > 0 and <= 1"),
     ({"name": "aepo", "actuator": "temperature", "options": {"aepo_max_splice": 2.5}},
      r"control.aepo_max_splice = 2.5 has the wrong type; valid: int"),
     ({"options": {"value": float("nan")}}, "control.value = nan is out of range; valid: finite")],
)
def test_control_config_ranges(kw, match):
    with pytest.raises(OptionError, match=match):
        ControlConfig(**kw)
