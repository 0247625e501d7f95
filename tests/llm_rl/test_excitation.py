"""Open-loop excitation schedules (``prbs``, ``steps``) for identification."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctrlbench.options import OptionError
from llm_rl.entropy_control import ENTROPY_CONTROLLERS, ControlConfig, make_entropy_controller
from llm_rl.excitation import PRBSOptions, prbs_schedule, steps_schedule


def make(name, **options):
    return make_entropy_controller(ControlConfig(name=name, options=options))


def test_registered_lazily_with_their_options():
    assert {"prbs", "steps"} <= set(ENTROPY_CONTROLLERS.names())
    assert ENTROPY_CONTROLLERS.options("prbs") is PRBSOptions


def test_prbs_is_reproducible_within_levels_and_held():
    opts = {"low": 0.05, "high": 0.35, "hold": 3, "warmup": 4, "warmup_value": 0.0,
            "prbs_seed": 7}
    a, b = make("prbs", **opts), make("prbs", **opts)
    ua = [a.value] + [a.update(0.5) for _ in range(60)]
    ub = [b.value] + [b.update(9.0) for _ in range(60)]  # open loop: H is ignored
    assert ua == ub
    assert ua[:4] == [0.0] * 4
    assert set(ua[4:]) == {0.05, 0.35}
    runs = np.split(np.array(ua[4:61]), range(3, 57, 3))
    assert all(len(set(r)) == 1 for r in runs)  # each bit held 3 steps
    assert ua == list(prbs_schedule(PRBSOptions(**opts), 61))
    other = make("prbs", **{**opts, "prbs_seed": 8})
    assert [other.value] + [other.update(0.5) for _ in range(60)] != ua


def test_schedule_resumes_from_state_dict():
    a = make("prbs", hold=2, prbs_seed=3)
    for _ in range(5):
        a.update(0.5)
    b = make("prbs", hold=2, prbs_seed=3)
    b.load_state_dict(a.state_dict())
    assert [a.update(0.5) for _ in range(9)] == [b.update(0.5) for _ in range(9)]


def test_steps_schedule():
    c = make("steps", schedule=[(0, 0.1), (3, 0.2), (5, 0.0)])
    assert [c.value] + [c.update(0.6) for _ in range(6)] == [0.1, 0.1, 0.1, 0.2, 0.2, 0.0, 0.0]
    assert list(steps_schedule(((2, 0.3),), 4)) == [0.3] * 4  # before the first step: its value


@pytest.mark.parametrize(("options", "message"), [
    ({"schedule": []}, r"control.schedule = \(\) is empty"),
    ({"schedule": [(0, 0.1), (0, 0.2)]}, "greater than the previous step"),
    ({"schedule": [(1.5, 0.1)]}, "must be an integer >= 0"),
    ({"schedule": [(0, float("nan"))]}, "must be finite"),
    ({"schedule": [(0, 0.1, 3)]}, "is not a \\(step, value\\) pair"),
])
def test_steps_rejects_bad_schedules(options, message):
    with pytest.raises(OptionError, match=message):
        ControlConfig(name="steps", options=options)


def test_prbs_rejects_bad_options():
    with pytest.raises(OptionError, match=r"control.high = 0.1.*> low \(0.2\)"):
        ControlConfig(name="prbs", options={"low": 0.2, "high": 0.1})
    with pytest.raises(OptionError, match=r"control.hold = 0"):
        ControlConfig(name="prbs", options={"hold": 0})
    with pytest.raises(OptionError, match=r"unknown option\(s\) \['kp'\].*prbs_seed"):
        ControlConfig(name="prbs", options={"kp": 1.0})


@settings(max_examples=40, deadline=None)
@given(low=st.floats(-1, 1), span=st.floats(1e-3, 1), hold=st.integers(1, 9),
       warmup=st.integers(0, 5), seed=st.integers(0, 2**31), n=st.integers(0, 80))
def test_prbs_fuzz_levels_and_length(low, span, hold, warmup, seed, n):
    o = PRBSOptions(low=low, high=low + span, hold=hold, warmup=warmup, prbs_seed=seed)
    u = prbs_schedule(o, n)
    assert u.shape == (n,)
    assert set(u[warmup:]) <= {o.low, o.high}
    assert np.array_equal(u, prbs_schedule(o, n))


@pytest.mark.slow
def test_prbs_drives_a_real_run_and_the_log_feeds_sysid(tmp_path, tiny):
    import json

    from llm_rl.cli import main
    from llm_rl.sysid import load_runs

    out = tmp_path / "prbs"
    assert main(tiny(out, "--steps", "8", "--control.name", "prbs", "--control.high", "0.3",
                     "--control.hold", "2", "--control.prbs_seed", "4")) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x]
    want = prbs_schedule(PRBSOptions(high=0.3, hold=2, prbs_seed=4), 8)
    assert [r["actuator"] for r in rows] == list(want)
    (run,) = load_runs([out])
    assert len(run) == 8 and list(run.actuator) == list(want)
