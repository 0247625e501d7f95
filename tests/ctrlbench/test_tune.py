"""``ctrlbench tune``: parameter ranges, clear errors, the options file, resuming a study."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("optuna", reason="tuning needs the tune extra (ctrlbench[tune])")

from ctrlbench.cli import main
from ctrlbench.study import StudySpec
from ctrlbench.tune import ParamRange, TuneSpec, parse_param, run_tune, seeds_of
from ctrlbench.tune_options import read_options_file, write_options_file

MSD = "ctrlbench/MassSpringDamper-v0"


def _spec(**kw) -> TuneSpec:
    base = {"plant": MSD, "controller": "pid", "params": (parse_param("bandwidth=1:20:log"),),
            "seeds": (0, 1), "steps": 100, "trials": 3}
    return TuneSpec(**{**base, **kw})


def test_param_ranges_parse_and_bad_ones_name_the_value():
    assert parse_param("t_sigma=2e-5:2e-3:log") == ParamRange("t_sigma", 2e-5, 2e-3, log=True)
    assert parse_param("n=1:9:int").integer and not parse_param("k=0:1").log
    for text, says in (("kp=5:5", "empty range 5.0:5.0"), ("kp=9:1", "empty range 9.0:1.0"),
                       ("kp=0:1:log", "log range needs low > 0, got 0.0"),
                       ("kp=a:1", "low 'a' is not a number"), ("kp", "NAME=LOW:HIGH"),
                       ("kp=1:2:cubic", "unknown flag(s) ['cubic']")):
        with pytest.raises(ValueError) as err:
            parse_param(text)
        assert says in str(err.value), (text, str(err.value))
    assert seeds_of("0-2,7") == (0, 1, 2, 7)
    with pytest.raises(ValueError, match="given twice"):
        _spec(params=(parse_param("bandwidth=1:2"), parse_param("bandwidth=2:3")))


def test_bad_name_storage_metric_and_range_are_clear_errors(tmp_path, capsys):
    with pytest.raises(KeyError, match=r"takes no option 'kp'; valid options: \['bandwidth'\]"):
        run_tune(_spec(params=(parse_param("kp=1:2"),)), tmp_path / "a")
    with pytest.raises(KeyError, match=r"unknown metric 'iea'.*'iae'"):
        run_tune(_spec(metric="iea"), tmp_path / "b")
    with pytest.raises(ValueError, match=r"bandwidth = 0\.0 is out of range"):
        run_tune(_spec(params=(parse_param("bandwidth=0:2"),)), tmp_path / "c")
    with pytest.raises(ValueError, match=r"cannot use Optuna storage 'nosuchdb://x'.*sqlite:///"):
        run_tune(_spec(), tmp_path / "d", storage="nosuchdb://x")
    status = main(["tune", MSD, "pid", "--param", "bandwidth=3:1", "--out", str(tmp_path / "e")])
    err = capsys.readouterr().err
    assert status == 2 and "empty range 3.0:1.0" in err and "Traceback" not in err
    status = main(["tune", MSD, "pid", "--param", "bandwidth=1:3", "--storage",
                   "postgresql://me:secret@localhost/db", "--out", str(tmp_path / "f")])
    err = capsys.readouterr().err
    assert status == 2 and "'postgresql://me:***@localhost/db'" in err and "secret" not in err


def test_tune_writes_options_run_and_studies_take_and_a_rerun_continues(tmp_path, capsys):
    out = tmp_path / "tune"
    first = run_tune(_spec(), out)
    trials = first.study.get_trials()
    assert first.finished == 3 and [t.number for t in trials] == [0, 1, 2]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert first.best_value == min(t.value for t in complete)
    assert first.best_value == pytest.approx(sum(first.study.best_trial.user_attrs["values"]) / 2)
    options = read_options_file(first.options_file, "pid")
    assert options == {"bandwidth": first.best_params["bandwidth"]}
    meta = json.loads(first.options_file.read_text())
    assert meta["controller"] == "pid" and meta["trials_finished"] == 3
    # ctrlbench run and study specs take the file
    assert main(["run", MSD, "pid", "--options", str(first.options_file), "--steps", "20",
                 "--out", str(tmp_path / "run")]) == 0
    spec = StudySpec.from_dict({"name": "s", "plants": [MSD], "controllers": ["pid"],
                                "controller_options": {"pid": str(first.options_file)}})
    assert spec.controller_options["pid"] == options
    with pytest.raises(ValueError, match="holds options of controller 'pid', not 'lqr'"):
        read_options_file(first.options_file, "lqr")
    bad = write_options_file(tmp_path / "bad.toml", {"kp": 1.0})
    capsys.readouterr()
    assert main(["run", MSD, "pid", "--options", str(bad), "--out", str(tmp_path / "r2")]) == 2
    assert "unknown option(s) ['kp']" in capsys.readouterr().err
    # a rerun with a larger budget continues the same study from its storage
    again = run_tune(_spec(trials=5), out)
    trials2 = again.study.get_trials()
    assert [t.number for t in trials2] == list(range(5)) and again.finished == 5
    assert [t.params for t in trials2[:3]] == [t.params for t in trials]
    assert trials2[3].params != trials[0].params  # a resumed sampler does not repeat itself
    records = list((out / "runs" / "records").glob("*.json"))
    run_ids = {json.loads(p.read_text())["run_id"] for p in records}
    assert len(records) == len(run_ids) <= 10
    with pytest.raises(ValueError, match=r"tunes something else.*seeds"):
        run_tune(_spec(seeds=(5,)), out)
