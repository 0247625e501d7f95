"""The README's LLM commands, run through ``llm_rl.cli.main`` with the README's flags.

README.md: ``ctrlbench llm train --task sumpair --steps 150 --control.name pid
--control.setpoint 0.6`` holds the token-mean entropy near H* with the pid controller's default
gains: mean |H - H*| / H* over the second half of the run <= 0.25 (``metrics.jsonl``).
"""

import json

import pytest

from llm_rl.cli import main
from tests.llm_rl.conftest import README_PID, README_PID_STEPS

SETPOINT = 0.6
#: The README's bound on mean |H - H*| / H* over the second half of the run.
README_BOUND = 0.25


def _second_half_error(out_dir, steps):
    rows = [json.loads(x) for x in (out_dir / "metrics.jsonl").read_text().splitlines() if x]
    assert [m["step"] for m in rows] == list(range(steps))
    half = [m["entropy"] for m in rows[steps // 2 :]]
    return sum(abs(h - SETPOINT) / SETPOINT for h in half) / len(half), rows


def test_readme_pid_command_short(readme_pid_run):
    """The README command cut to 60 steps (same sizes, defaults and warm start), run once."""
    out, _ = readme_pid_run
    err, rows = _second_half_error(out, README_PID_STEPS)
    assert err <= README_BOUND, err
    assert rows[0]["setpoint"] == SETPOINT and rows[0]["actuator_name"] == "entropy_coef"
    assert max(m["actuator"] for m in rows) > 0  # the controller acted (bonus in [0, 1])
    assert all(0.0 <= m["actuator"] <= 1.0 for m in rows)
    saved = json.loads((out / "config.json").read_text())["control"]["options"]
    assert saved == {"value": 0.0, "u_min": 0.0, "u_max": 1.0, "kp": 1.0, "ki": 0.1, "kd": 0.0}


@pytest.mark.slow
def test_readme_pid_command_full(sft_dir, tmp_path):
    """The README command as written (150 steps, ~40 s on one CPU thread)."""
    out = tmp_path / "pid"
    assert main([*README_PID, "--steps", "150", "--out_dir", str(out), "--sft_dir", sft_dir,
                 "--tensorboard", "false"]) == 0
    err, _ = _second_half_error(out, 150)
    assert err <= README_BOUND, err
