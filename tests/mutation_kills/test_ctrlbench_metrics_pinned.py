"""ctrlbench.metrics pinned at hand-derived values (kills mutmut's survivors; studies/mutation.py).

A trajectory whose clock starts at t0 = 1 s (dt = 0.25 s, all values exact in binary), with two
references of different units: ``r`` steps 1 -> 3 at sample 2 (the sample before, y = 1.0,
differs from y[0] = 0.8), ``r2`` is constant 2 (a step at t = 0). Every metric is asked for the
second reference too, so a metric that ignores ``reference`` reads the first one.
"""

import math

import numpy as np
import pytest

from ctrlbench import metrics
from ctrlbench.signals import SignalSpec
from ctrlbench.trajectory import Trajectory

Y = [0.8, 1.0, 1.25, 1.5, 2.5, 3.5, 3.25, 3.0625, 3.0]
R = [1.0, 1.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]
Y2 = [0.0, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
U = [0.5, -1.5, 2.0, 1.0, 1.0, -0.5, 0.25, 0.0]


def traj(y=Y, r=R, y2=Y2, u=U, t0=1.0, dt=0.25, action_units=("V",)) -> Trajectory:
    n = len(y)
    obs = np.stack([y, r, y2, np.full(n, 2.0)], axis=1)
    return Trajectory(
        time=t0 + dt * np.arange(n),
        observations=obs,
        actions=np.asarray(u, dtype=float).reshape(-1, len(action_units)),
        rewards=-np.ones(len(u) // len(action_units)),
        observation_signals=(SignalSpec("y", unit="A", low=0.8, high=3.5),
                             SignalSpec("r", unit="A", tracks="y"),
                             SignalSpec("y2", unit="V", high=2.5),
                             SignalSpec("r2", unit="V", tracks="y2")),
        action_signals=tuple(SignalSpec(f"u{i}", unit=a) for i, a in enumerate(action_units)),
    )


# e = r - y on samples 1..8: [0, 1.75, 1.5, .5, -.5, -.25, -.0625, 0]; times 1.25 .. 3.0
# e2 = 2 - y2 on samples 1..8: [1.5, 1, 0, 0, 0, 0, 0, 0]
WANT = {
    "steps": 8, "duration": 2.0, "terminated": False,
    "r.iae": 4.5625 * 0.25,
    "r.ise": (3.0625 + 2.25 + 0.25 + 0.25 + 0.0625 + 0.00390625) * 0.25,
    "r.itae": (1.5 * 1.75 + 1.75 * 1.5 + 2.0 * 0.5 + 2.25 * 0.5 + 2.5 * 0.25
               + 2.75 * 0.0625) * 0.25,
    "r.overshoot": 0.5 / 2.0 * 100,  # peak 3.5 past 3, step 1 -> 3 from y = 1.0
    "r.rise_time": 0.75,  # frac (y - 1)/2 from the step: .125 (>= .1) ... 1.25 (>= .9), 3 dt
    "r.settling_time": 1.5,  # |y - 3| > .04 up to sample 5 after the step, settled at 6 dt
    "r.steady_state_error": 0.0,
    "r2.iae": 2.5 * 0.25,
    "r2.ise": (2.25 + 1.0) * 0.25,
    "r2.itae": (1.25 * 1.5 + 1.5 * 1.0) * 0.25,
    "r2.overshoot": 0.0,
    "r2.rise_time": 0.5,  # y2/2 = .25 at 1 dt, 1.0 at 3 dt
    "r2.settling_time": 0.75,
    "r2.steady_state_error": 0.0,
    "control_effort": (0.25 + 2.25 + 4.0 + 1.0 + 1.0 + 0.25 + 0.0625) * 0.25,
    "total_variation": 2.0 + 3.5 + 1.0 + 0.0 + 1.5 + 0.75 + 0.25,
    "constraint_violations": 0,  # y touches both bounds exactly, never beyond
    "return": -8.0,
}
WANT.update({k: WANT[f"r.{k}"] + WANT[f"r2.{k}"] for k in ("iae", "ise", "itae")})


def test_summary_pinned():
    s = metrics.summary(traj())
    assert set(s) == set(WANT)
    for k, v in WANT.items():
        assert s[k] == pytest.approx(v, abs=1e-12), k


def test_each_metric_per_reference():
    tr = traj()
    for ref in ("r", "r2"):
        for name in ("iae", "ise", "itae", "overshoot", "rise_time", "settling_time",
                     "steady_state_error"):
            assert getattr(metrics, name)(tr, ref) == pytest.approx(WANT[f"{ref}.{name}"],
                                                                    abs=1e-12), (ref, name)


def test_rise_settling_boundaries_and_tail():
    tr = traj()
    # frac .25 and .75 are hit exactly (samples 1 and 2 after the step): counted (>=)
    assert metrics.rise_time(tr, "r", lo=0.25, hi=0.75) == 0.25
    # band .125 -> tol .25; |y - 3| = .25 at step-sample 4 is inside (not >)
    assert metrics.settling_time(tr, "r", band=0.125) == 1.0
    # tail .25 of 8 errors -> the last 2: |-.0625|, 0
    assert metrics.steady_state_error(tr, "r", tail=0.25) == 0.03125
    assert metrics.steady_state_error(tr, "r2", tail=0.25) == 0.0
    # tail .1 -> round(.8) = 1 sample (the last, 0) for r; r2's last is 0 too
    assert metrics.steady_state_error(traj(y=[*Y[:-1], 2.75]), "r") == 0.25


def test_constant_reference_counts_from_sample_zero():
    # no step: y0 = y[0]; settling counted from t[0] (outside up to sample 2 -> 3 dt)
    y = [0.5, 1.5, 2.5, 2.0, 2.0]
    tr = traj(y=y, r=[2.0] * 5, y2=[2.0] * 5, u=[0.0] * 4)
    assert metrics.overshoot(tr, "r") == pytest.approx(0.5 / 1.5 * 100)
    assert metrics.settling_time(tr, "r") == 0.75
    # starting on the reference: no step -> 0, and already settled -> 0
    flat = traj(y=[2.0] * 5, r=[2.0] * 5, y2=[2.0] * 5, u=[0.0] * 4)
    assert metrics.overshoot(flat, "r") == 0.0
    assert metrics.rise_time(flat, "r") == 0.0
    assert metrics.settling_time(flat, "r") == 0.0
    # reaching 10 % and 90 % only at the last sample: rise time 0, settling NaN
    late = traj(y=[1.0, 1.0, 1.0, 3.0], r=[3.0] * 4, y2=[2.0] * 4, u=[0.0] * 3)
    assert metrics.rise_time(late, "r") == 0.0
    # one sample outside the band (the first): settled from the second
    one = traj(y=[1.0, 3.0, 3.0, 3.0], r=[3.0] * 4, y2=[2.0] * 4, u=[0.0] * 3)
    assert metrics.settling_time(one, "r") == 0.25
    # a step smaller than 1: band .25 of .5 -> tol .125; |y - 1| = .1875 at sample 1 is outside
    small = traj(y=[0.5, 0.8125, 1.0, 1.0], r=[1.0] * 4, y2=[2.0] * 4, u=[0.0] * 3)
    assert metrics.settling_time(small, "r", band=0.25) == 0.5


def test_step_edge_cases():
    n = 5
    # never reaching 90 %: NaN rise time
    low = traj(y=[0.0, 1.0, 1.0, 1.0, 1.0], r=[2.0] * n, y2=[2.0] * n, u=[0.0] * 4)
    assert math.isnan(metrics.rise_time(low, "r"))
    # a step at the last sample: target 3 from y = 1, one sample at 1 -> never rises
    last = traj(y=[1.0] * n, r=[1.0] * 4 + [3.0], y2=[2.0] * n, u=[0.0] * 4)
    assert math.isnan(metrics.rise_time(last, "r"))
    # two changes: not a step
    two = traj(y=[0.0] * n, r=[0.0, 1.0, 2.0, 2.0, 2.0], y2=[2.0] * n, u=[0.0] * 4)
    assert math.isnan(metrics.overshoot(two, "r"))
    with pytest.raises(KeyError, match=r"unknown reference 'zz'; valid references: \['r', 'r2'\]"):
        metrics.overshoot(traj(), "zz")
    bare = Trajectory(time=np.arange(3.0), observations=np.zeros((3, 1)),
                      actions=np.zeros((2, 1)), rewards=np.zeros(2),
                      observation_signals=(SignalSpec("y"),), action_signals=(SignalSpec("u"),))
    with pytest.raises(KeyError, match=r"unknown reference None; valid references: \[\]"):
        metrics.rise_time(bare)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the empty episode's mean of no errors
def test_total_variation_short_and_effort_sign():
    two = traj(y=Y[:3], r=R[:3], y2=Y2[:3], u=[0.5, -1.5])
    assert metrics.total_variation(two) == 2.0
    one = traj(y=Y[:2], r=R[:2], y2=Y2[:2], u=[0.5])
    assert metrics.total_variation(one) == 0.0
    assert metrics.control_effort(two) == (0.25 + 2.25) * 0.25
    empty = traj(y=Y[:1], r=R[:1], y2=Y2[:1], u=[])
    assert metrics.summary(empty)["duration"] == 0.0


def test_units_pinned():
    per = {"iae": "{}*s", "ise": "({})^2*s", "itae": "{}*s^2", "overshoot": "%",
           "rise_time": "s", "settling_time": "s", "steady_state_error": "{}"}
    want = {"steps": "1", "duration": "s", "terminated": "", "constraint_violations": "samples",
            "return": "1", "iae": "mixed", "ise": "mixed", "itae": "mixed",
            "control_effort": "(V)^2*s", "total_variation": "V"}
    for ref, u in (("r", "A"), ("r2", "V")):
        want.update({f"{ref}.{k}": v.format(u) for k, v in per.items()})
    assert metrics.units(traj()) == want

    one = Trajectory(time=np.arange(3.0), observations=np.zeros((3, 2)),
                     actions=np.zeros((2, 2)), rewards=np.zeros(2),
                     observation_signals=(SignalSpec("y", unit="1"),
                                          SignalSpec("r", unit="1", tracks="y")),
                     action_signals=(SignalSpec("a", unit="N"), SignalSpec("b", unit="")))
    want1 = {"steps": "1", "duration": "s", "terminated": "", "constraint_violations": "samples",
             "return": "1", "iae": "s", "ise": "s", "itae": "s^2", "r.iae": "s", "r.ise": "s",
             "r.itae": "s^2", "r.overshoot": "%", "r.rise_time": "s", "r.settling_time": "s",
             "r.steady_state_error": "1", "control_effort": "mixed", "total_variation": "mixed"}
    assert metrics.units(one) == want1
    blank = Trajectory(time=np.arange(3.0), observations=np.zeros((3, 2)),
                       actions=np.zeros((2, 1)), rewards=np.zeros(2),
                       observation_signals=(SignalSpec("y", unit="m"),
                                            SignalSpec("r", unit="m", tracks="y")),
                       action_signals=(SignalSpec("a", unit=""),))
    odd = Trajectory(time=np.arange(3.0), observations=np.zeros((3, 2)),
                     actions=np.zeros((2, 1)), rewards=np.zeros(2),
                     observation_signals=(SignalSpec("y", unit="m"),
                                          SignalSpec("r", unit="m", tracks="a")),
                     action_signals=(SignalSpec("a", unit="N"),))
    assert metrics.units(odd)["r.iae"] == "s"  # tracks no observation: dimensionless
    got = metrics.units(blank)
    assert got["control_effort"] == "s" and got["total_variation"] == ""
    assert got["iae"] == "m*s" and got["r.ise"] == "(m)^2*s"
