"""``studies/sindy_rl_sample_efficiency.py``: thresholds, the table, and ``--smoke`` end to end."""

from __future__ import annotations

import json
import math

from tests.fixtures.studies import load_study


def test_full_settings_meet_the_brief():
    study = load_study("sindy_rl_sample_efficiency")
    args = study.Args()
    assert args.seeds >= 5 and len(study.ENVS) >= 3 and study.ENVS[0] == "Pendulum-v1"
    assert not args.smoke


def test_bad_arguments_exit_with_a_message(capsys):
    study = load_study("sindy_rl_sample_efficiency")
    assert study.main(["--tag", "../x"]) == 2
    assert "tag = '../x'" in capsys.readouterr().err
    assert study.main(["--seeds", "0"]) == 2
    assert "seeds = 0" in capsys.readouterr().err


def test_threshold_and_first_reach():
    study = load_study("sindy_rl_sample_efficiency")
    anchors = {"random": {"return": -100.0}, "pid": {"return": -10.0}}
    assert study._threshold("plant", anchors, 0.8) == -28.0
    assert study._threshold("Pendulum-v1", None, 0.8) == -300.0
    evals = [{"step": 10, "return": -50.0}, {"step": 20, "return": -27.0},
             {"step": 30, "return": -5.0}]
    assert study._first_reach(evals, -28.0) == 20
    assert study._first_reach(evals, 0.0) is None
    ended = [{"step": 10, "return": -1.0, "terminated": True}, *evals]
    assert study._first_reach(ended, -28.0) == 20  # an episode ended early does not count


def test_smoke_study_writes_its_table_and_resumes(tmp_path, capsys):
    study = load_study("sindy_rl_sample_efficiency")
    out = tmp_path / "s"
    assert study.main(["--smoke", "--out", str(out)]) == 0
    data = json.loads((out / "results.json").read_text())
    table = data["table"]
    for env in study.ENVS:
        for method in ("sac", "sindy-rl"):
            assert table[env][method]["runs"] == 1
        assert (out / f"{env.split('/')[-1]}.png").exists()
    runs = {(r["env"], r["method"]): r for r in data["runs"]}
    # SINDy-RL evaluates after each round at the real-step count: 50 random + 2 x 40 <= 90+
    steps = [e["step"] for e in runs[("Pendulum-v1", "sindy-rl")]["evals"]]
    assert steps == [90, 130] or steps[-1] >= 90
    for motor in study.MOTORS:
        assert table[motor][0]["pi_iae"] > 0 and math.isfinite(table[motor][0]["sac_iae"])
    assert "| Pendulum-v1 | sindy-rl |" in (out / "results.md").read_text()
    capsys.readouterr()
    assert study.main(["--smoke", "--out", str(out)]) == 0  # every run is found finished
    again = json.loads((out / "results.json").read_text())
    assert [r["evals"] for r in again["runs"]] == [r["evals"] for r in data["runs"]]
    assert [r["wall_s"] for r in again["runs"]] == [r["wall_s"] for r in data["runs"]]
    assert all(r["wall_s"] > 0 for r in data["runs"])
