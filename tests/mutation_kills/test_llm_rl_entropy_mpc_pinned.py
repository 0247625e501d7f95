"""Pinned behaviour of llm_rl/entropy_mpc.py against an independent scalar re-implementation
(mutation survivors of `make mutation`)."""

import numpy as np
import pytest

from ctrlbench.options import OptionError
from llm_rl.entropy_control import ControlConfig, make_entropy_controller
from llm_rl.entropy_mpc import NMPCOptions, fit_quadratic_model, quadratic_model
from llm_rl.sysid import RunData

THETA = (0.02, 0.93, 0.12, -0.04, 0.35, -0.15, 0.20)
OPTS = {"theta": THETA, "u_low": 0.05, "u_high": 0.45, "u_start": 0.1, "horizon": 4,
        "n_grid": 9, "move_weight": 0.5, "above_weight": 4.0, "obs_gain": 0.6,
        "dist_gain": 0.3, "momentum": 0.3, "h_floor": 0.5}


class Reference:
    """The controller's documented algorithm, one candidate at a time in plain floats."""

    def __init__(self, o, h_star):
        self.o, self.h_star = o, h_star
        self.grid = [o["u_low"] + i * (o["u_high"] - o["u_low"]) / (o["n_grid"] - 1)
                     for i in range(o["n_grid"])]
        self.value = self.u_prev = o["u_start"]
        self.x = self.pred = self.x_prev = None
        self.d = 0.0

    def f(self, h, u, v):
        hc = max(h, self.o["h_floor"])
        t = self.o["theta"]
        return (t[0] + t[1] * hc + t[2] * u + t[3] * hc * hc + t[4] * hc * u + t[5] * u * u
                + t[6] * v) + (h - hc) + self.d

    def update(self, y):
        o = self.o
        if self.pred is None:
            self.x, self.d, self.x_prev = y, 0.0, y
        else:
            innov = y - self.pred
            self.x_prev, self.x = self.x, self.pred + o["obs_gain"] * innov
            self.d += o["dist_gain"] * innov
        self.pred = self.f(self.x, self.value, self.u_prev) + o["momentum"] * (self.x - self.x_prev)
        best, best_cost = None, None
        for u in self.grid:
            h, h_last, v = self.pred, self.x, self.value
            cost = o["move_weight"] * (u - self.value) ** 2
            for _ in range(o["horizon"]):
                h, h_last = min(max(self.f(h, u, v) + o["momentum"] * (h - h_last), 0.0),
                                10.0), h
                v = u
                err = h - self.h_star
                cost += (o["above_weight"] if err > 0 else 1.0) * err * err
            if best_cost is None or cost < best_cost - 1e-15:
                best, best_cost = u, cost
        self.u_prev, self.value = self.value, best
        return best


READINGS = [0.95, 0.82, 0.71, 0.66, 0.48, 0.41, 0.55, 0.62, 0.7, 0.58, 0.6, 0.45]


@pytest.mark.parametrize("h_star", [0.6, 0.45])
def test_decisions_equal_the_reference_step_by_step(h_star):
    ctrl = make_entropy_controller(ControlConfig(name="nmpc", setpoint=h_star, options=OPTS))
    ref = Reference(OPTS, h_star)
    got = [ctrl.update(y) for y in READINGS]
    want = [ref.update(y) for y in READINGS]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    assert len(set(np.round(got, 6))) >= 3  # the decisions move: every cost term is exercised
    assert ctrl.pred == pytest.approx(ref.pred, abs=1e-12)
    assert ctrl.d == pytest.approx(ref.d, abs=1e-12) and ctrl.d != 0.0


def test_predictions_are_clipped_to_0_and_10_nats():
    explode = {**OPTS, "theta": (0.5, 3.0, 0.0, 0.0, 0.0, 0.0, 0.0), "h_floor": 0.0,
               "momentum": 0.0}
    for theta, y in ((explode["theta"], 2.0), ((-3.0, 0.2, 1.0, 0.0, 0.0, 0.0, 0.0), 0.3)):
        o = {**explode, "theta": theta}
        ctrl = make_entropy_controller(ControlConfig(name="nmpc", setpoint=0.6, options=o))
        ref = Reference(o, 0.6)
        assert [ctrl.update(y), ctrl.update(y * 1.1)] == pytest.approx(
            [ref.update(y), ref.update(y * 1.1)], abs=1e-12)


def test_state_round_trip_mid_run_continues_identically():
    a = make_entropy_controller(ControlConfig(name="nmpc", setpoint=0.6, options=OPTS))
    for y in READINGS[:5]:
        a.update(y)
    b = make_entropy_controller(ControlConfig(name="nmpc", setpoint=0.6, options=OPTS))
    b.load_state_dict(a.state_dict())
    assert [b.update(y) for y in READINGS[5:]] == [a.update(y) for y in READINGS[5:]]
    fresh = make_entropy_controller(ControlConfig(name="nmpc", setpoint=0.6, options=OPTS))
    c = make_entropy_controller(ControlConfig(name="nmpc", setpoint=0.6, options=OPTS))
    c.update(0.9)
    c.load_state_dict(fresh.state_dict())  # back to "no reading yet"
    assert c.x is None and c.pred is None and c.x_prev is None
    assert c.update(0.7) == fresh.update(0.7)


def _run(n, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.choice([0.0, 0.1, 0.25, 0.4], size=n)
    h = np.empty(n)
    h[:2] = [0.6, 0.65]
    for k in range(1, n - 1):
        h[k + 1] = quadratic_model(THETA, h[k], u[k], u[k - 1])
    return RunData(h, u)


def test_fit_uses_steps_2_to_n_minus_2_and_needs_seven():
    # a run of 10 steps gives exactly 7 rows (k = 2..8): enough, and exact on noiseless data
    runs = [_run(10, s) for s in range(1)]
    np.testing.assert_allclose(fit_quadratic_model(runs), THETA, atol=1e-6)
    with pytest.raises(ValueError, match="6 usable steps"):
        fit_quadratic_model([_run(9)])


def test_the_10_nat_ceiling_decides_a_step():
    # h+ = 0.6 + 1.5 h - 9.4 u + 1.6 u^2 from 8.4 nats: the predictions of the small bonuses
    # pass 10 nats, and clipped there they cost less than the largest bonus (0.05, not 0.45;
    # with a ceiling of 11 nats or none the choice would be 0.45)
    o = {**OPTS, "theta": (0.6, 1.5, -9.4, 0.0, 0.0, 1.6, 0.0), "h_floor": 0.0,
         "momentum": 0.0, "move_weight": 0.0}
    ctrl = make_entropy_controller(ControlConfig(name="nmpc", setpoint=0.6, options=o))
    ref = Reference(o, 0.6)
    got = [ctrl.update(4.15), ctrl.update(8.4)]
    assert got == [ref.update(4.15), ref.update(8.4)] == pytest.approx([0.45, 0.05], abs=1e-12)


def test_fit_leaves_out_the_steps_from_the_first_h_above_1_5():
    # noiseless steps up to the first H > 1.5, then readings no quadratic fits (the default
    # h_max 1.5 cuts them off; 2.5 would keep them)
    run = _run(14, seed=3)
    h = np.concatenate([run.entropy, [1.6, 2.4, 0.2, 2.3, 0.1, 1.9, 0.3, 2.2]])
    u = np.concatenate([run.actuator, np.full(8, 0.3)])
    assert run.entropy.max() < 1.5
    np.testing.assert_allclose(fit_quadratic_model([RunData(h, u)]), THETA, atol=1e-6)


def test_model_default_previous_input_is_zero():
    t = THETA
    assert quadratic_model(THETA, 0.7, 0.2) == pytest.approx(
        t[0] + t[1] * 0.7 + t[2] * 0.2 + t[3] * 0.49 + t[4] * 0.14 + t[5] * 0.04, abs=1e-15)


def test_checkpoints_of_a_fresh_and_a_loaded_controller():
    fresh = make_entropy_controller(ControlConfig(name="nmpc", setpoint=0.6, options=OPTS))
    state = fresh.state_dict()
    assert (state["x"], state["d"], state["pred"], state["x_prev"], state["u_prev"]) == \
        (None, 0.0, None, None, 0.1)
    a = make_entropy_controller(ControlConfig(name="nmpc", setpoint=0.6, options=OPTS))
    for y in READINGS[:3]:
        a.update(y)
    b = make_entropy_controller(ControlConfig(name="nmpc", setpoint=0.6, options=OPTS))
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict() and b.x_prev is not None


def test_options_convert_theta_and_name_each_rule():
    o = NMPCOptions(theta=[0, 1, 0, 0, 0, 0, 0])
    assert o.theta == (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    assert all(type(x) is float for x in o.theta)
    assert NMPCOptions(u_start=0.6).u_start == 0.6            # u_start = u_high is allowed
    with pytest.raises(OptionError, match=r"^control\.theta = \(1\.0, 2\.0\) is out of range; "
                                          r"valid: seven finite numbers \(1, H, u, H\^2, H u, "
                                          r"u\^2, u_prev\)$"):
        NMPCOptions(theta=(1.0, 2.0))
    with pytest.raises(OptionError, match=r"^control\.u_high = 0\.1 is out of range; valid: "
                                          r"> u_low \(0\.2\)$"):
        NMPCOptions(u_low=0.2, u_high=0.1, u_start=0.2)
    with pytest.raises(OptionError, match=r"^control\.u_start = 0\.7 is out of range; valid: "
                                          r"in \[u_low, u_high\] = \[0\.0, 0\.6\]$"):
        NMPCOptions(u_start=0.7)
