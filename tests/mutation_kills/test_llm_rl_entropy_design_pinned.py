"""Pinned values for llm_rl/entropy_design.py (mutation survivors of `make mutation`)."""

import math

import numpy as np
import pytest

from llm_rl.entropy_control import ControlConfig, make_entropy_controller
from llm_rl.entropy_design import PIDesign, pole_placement_pi, simulate_closed_loop
from llm_rl.sysid import ARXModel, RunData

A, B, C = 0.9, 0.5, 0.05


def _model(a=A, b=B, c=C, q=0.01):
    rng = np.random.default_rng(1)
    u = rng.choice([0.0, 0.1, 0.3], size=60)
    h = np.empty(60)
    h[0] = 0.6
    for k in range(59):
        h[k + 1] = a * h[k] + b * u[k] + c
    m = ARXModel(1, 1).fit([RunData(h, u)])
    m.q_ = q  # the residual variance the simulator's process noise is built from
    return m


def test_pole_placement_returns_its_rule_and_numbers():
    d = pole_placement_pi(_model(), 3)
    p = math.exp(-1 / 3)
    p3 = 1 + A - 2 * p
    assert d.rule == "pole placement"
    assert d.details.keys() == {"tau", "p", "p3", "a", "b"}
    assert d.details["tau"] == 3.0 and isinstance(d.details["tau"], float)
    assert d.details["p"] == pytest.approx(p) and d.details["p3"] == pytest.approx(p3)
    assert d.details["a"] == pytest.approx(A) and d.details["b"] == pytest.approx(B)


@pytest.mark.parametrize("tau", [True, math.inf, math.nan, 0, -1.0, "3"])
def test_pole_placement_refuses_bad_tau(tau):
    with pytest.raises(ValueError, match="is not valid; valid: a finite time constant > 0"):
        pole_placement_pi(_model(), tau)


def test_pole_placement_names_the_valid_tau_window():
    # tau 0.2: p = exp(-5), third pole 1.9 - 2 p ~ 1.887, outside the unit circle
    with pytest.raises(ValueError, match=r"exp\(-1/tau\) > 0\.450 and < 1\.450"):
        pole_placement_pi(_model(), 0.2)


def test_pid_options_pass_limits_and_start_value():
    d = PIDesign(1.5, 0.2, (), "x", {})
    assert d.pid_options(u_min=0.1, u_max=0.8, value=0.2) == {
        "kp": 1.5, "ki": 0.2, "kd": 0.0, "u_min": 0.1, "u_max": 0.8, "value": 0.2}


def test_simulation_equals_a_step_by_step_reference():
    m, r, opts = _model(), 0.002, {"kp": 1.2, "ki": 0.15, "kd": 0.0, "u_min": 0.0, "u_max": 1.0}
    out = simulate_closed_loop(m, opts, setpoint=0.7, steps=30, h0=0.4, r=r, seed=5)
    rng = np.random.default_rng(5)
    ctrl = make_entropy_controller(ControlConfig(name="pid", setpoint=0.7, options=opts))
    a, b = float(m.a_[0]), float(m.b_[0])
    q_proc = max(m.q_ - (1 + a * a) * r, 0.0)
    assert q_proc > 0
    x, hs, us = 0.4, [], []
    for _ in range(30):
        u = ctrl.value
        h = x + math.sqrt(r) * rng.standard_normal()
        hs.append(h)
        us.append(u)
        ctrl.update(h)
        x = a * x + b * u + m.c_ + math.sqrt(q_proc) * rng.standard_normal()
    np.testing.assert_array_equal(out["H"], hs)
    np.testing.assert_array_equal(out["u"], us)
    second = np.array(hs[15:])
    assert out["rel_err"] == pytest.approx(float(np.mean(np.abs(second - 0.7) / 0.7)))


def test_simulation_of_a_runaway_stops_and_reports_inf():
    m = _model(a=1.5, b=0.0, c=0.1, q=0.0)
    out = simulate_closed_loop(m, {"value": 0.0}, setpoint=0.6, steps=200, h0=1.0,
                               name="constant")
    assert len(out["H"]) < 200 and out["H"][-1] == math.inf and out["rel_err"] == math.inf
    assert np.all(np.isfinite(out["H"][:-1]))
    with pytest.raises(ValueError, match=r"noise variance r = -0\.1 must be finite and >= 0"):
        simulate_closed_loop(_model(), {}, r=-0.1)
