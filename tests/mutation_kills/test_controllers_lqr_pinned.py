"""controllers.lqr pinned against an independent design (kills mutmut's survivors).

Mass-spring-damper m = 2, c = 0.4, k = 3 (bounds |x| <= 5 m, |v| <= 50 m/s), dt = 0.01 s,
asymmetric force limits [-4, 10] N (u_max = 10). The expected gains come from the docstring's
weights, Q = diag(q_state w / x_max^2, q_integral / (x_max T_i)^2), R = r_input / u_max^2, with
scipy's ZOH (cont2discrete) and DARE. Test names contain "lqr" (studies/mutation.py selects
``-k "lqr or zoh"``).
"""

import dataclasses
from typing import Any

import numpy as np
import pytest
from scipy.linalg import solve_discrete_are
from scipy.signal import cont2discrete

from controllers.lqr import LQRIntegral
from ctrlbench.signals import SignalSpec
from plants.linear.model import mass_spring_damper_model

DT = 0.01
MODEL = mass_spring_damper_model(m=2.0, c=0.4, k=3.0)


def _lqr(model=MODEL, **kw):
    return LQRIntegral(DT, model, (0, 1), (2,), (0,), np.array([-4.0]), np.array([10.0]), **kw)


def _gains(x_max, q_state=100.0, q_integral=1.0, r_input=1.0, t_i=10 * DT, w=(1.0, 1.0)):
    a = np.array([[0.0, 1.0], [-3.0 / 2.0, -0.4 / 2.0]])
    b = np.array([[0.0], [1.0 / 2.0]])
    ad, bd, *_ = cont2discrete((a, b, np.eye(2), np.zeros((2, 1))), DT, method="zoh")
    aa = np.block([[ad, np.zeros((2, 1))], [-DT * np.array([[1.0, 0.0]]), np.eye(1)]])
    ba = np.vstack([bd, np.zeros((1, 1))])
    q = np.diag([q_state * w[0] / x_max[0] ** 2, q_state * w[1] / x_max[1] ** 2,
                 q_integral / (x_max[0] * t_i) ** 2])
    r = np.array([[r_input / 10.0**2]])
    p = solve_discrete_are(aa, ba, q, r)
    k = np.linalg.solve(r + ba.T @ p @ ba, ba.T @ p @ aa)
    return k[:, :2], -k[:, 2:]


def test_lqr_default_weights_pinned():
    ctrl = _lqr()
    k_x, k_z = _gains((5.0, 50.0))
    np.testing.assert_allclose(ctrl.k_x, k_x, rtol=1e-9)
    np.testing.assert_allclose(ctrl.k_z, k_z, rtol=1e-9)


def test_lqr_explicit_weights_pinned():
    ctrl = _lqr(q_state=30.0, q_integral=2.0, r_input=0.5, t_integral=0.05,
                state_weights=(2.0, 0.5))
    k_x, k_z = _gains((5.0, 50.0), 30.0, 2.0, 0.5, 0.05, (2.0, 0.5))
    np.testing.assert_allclose(ctrl.k_x, k_x, rtol=1e-9)
    np.testing.assert_allclose(ctrl.k_z, k_z, rtol=1e-9)


def test_lqr_unbounded_state_scaled_by_one():
    states = (MODEL.states[0], SignalSpec("v", "m/s"))  # |v| unbounded -> x_max 1
    ctrl = _lqr(dataclasses.replace(MODEL, states=states))
    k_x, k_z = _gains((5.0, 1.0))
    np.testing.assert_allclose(ctrl.k_x, k_x, rtol=1e-9)
    np.testing.assert_allclose(ctrl.k_z, k_z, rtol=1e-9)


def test_lqr_feedforward_and_prefilter_sequence():
    # no prefilter by default: at x = x_s = [.8, 0] the action is the spring force k r = 2.4
    ctrl = _lqr()
    assert ctrl.compute(np.array([0.8, 0.0, 0.8])) == pytest.approx([2.4])
    # tau .03 s, dt .01 s -> alpha .25, started at the measured x = 0: ref .2, then .35
    ctrl = _lqr(reference_tau=0.03)
    k = ctrl.k_x[0]
    u1 = ctrl.compute(np.array([0.0, 0.0, 0.8]))
    assert u1 == pytest.approx([3 * 0.2 + 0.2 * k[0]])
    z = DT * 0.2
    u2 = ctrl.compute(np.array([0.0, 0.0, 0.8]))
    assert u2 == pytest.approx([3 * 0.35 + 0.35 * k[0] + ctrl.k_z[0, 0] * z])


def test_lqr_weight_checks():
    for kw in ({"t_integral": 0.0}, {"r_input": 0.0}, {"q_state": -1.0},
               {"q_integral": -1.0}):
        with pytest.raises(ValueError, match="need t_integral > 0, r_input > 0, q_state >= 0, "
                                             "q_integral >= 0; got"):
            _lqr(**kw)
    allowed: list[dict[str, Any]] = [{"q_state": 0.0}, {"q_integral": 0.0},
                                        {"q_state": 0.5, "q_integral": 0.5},
                                        {"state_weights": (1.0, 0.0)}]
    for ok in allowed:
        assert np.all(np.isfinite(_lqr(**ok).k_x))  # zero weights are allowed
    with pytest.raises(ValueError, match=r"state_weights needs 2 non-negative entries"):
        _lqr(state_weights=(1.0, -0.5))
    with pytest.raises(ValueError, match=r"reference_tau must be >= 0, got -0\.1"):
        _lqr(reference_tau=-0.1)


def test_lqr_default_has_no_prefilter():
    ctrl = _lqr()  # reference_tau 0: the reference .2 is used at once (u inside [-4, 10] N)
    assert ctrl.compute(np.array([0.0, 0.0, 0.2])) == pytest.approx([0.6 + 0.2 * ctrl.k_x[0, 0]])


def test_make_lqr_without_a_tracked_state_names_the_states():
    from controllers.lqr import LQROptions, make_lqr

    class Plant:  # observes x, v and a reference of something that is not a model state
        def get_wrapper_attr(self, name):
            return {"model": lambda: MODEL, "dt": DT,
                    "observation_signals": (SignalSpec("x"), SignalSpec("v"),
                                            SignalSpec("r", tracks="y")),
                    "action_signals": (SignalSpec("F", low=-4.0, high=10.0),)}[name]

    with pytest.raises(ValueError, match=r"no reference of the plant tracks a model state "
                                         r"\['x', 'v'\]"):
        make_lqr(Plant(), LQROptions())
