"""``studies/crystallization_lstmc.py --smoke``: trains a tiny LSTMc, evaluates PI, NMPC and
LSTMc, writes its table, records and figure; a rerun resumes (nothing is redone)."""

from __future__ import annotations

import json

from tests.fixtures.studies import load_study


def _study():
    return load_study("crystallization_lstmc")


def test_smoke_study_writes_its_table_and_resumes(tmp_path, capsys):
    study = _study()
    assert study.main(["--smoke", "--out", str(tmp_path)]) == 0
    assert "expected time" in capsys.readouterr().out
    table = (tmp_path / "results.md").read_text()
    for ctrl in ("pid", "mpc", "lstmc"):
        assert f"| {ctrl} |" in table
    result = json.loads((tmp_path / "results.json").read_text())
    assert {(t["set"], t["controller"]) for t in result["table"]} == {
        (s, c) for s in ("grades", "systems") for c in ("pid", "mpc", "lstmc")}
    assert all(r["status"] == "ok" for r in result["rows"]) and len(result["rows"]) == 9
    assert (tmp_path / "figure.png").stat().st_size > 10_000
    model = tmp_path / "lstmc" / "model.pt"
    stamp = model.stat().st_mtime_ns

    # a rerun trains nothing new and redoes no run
    assert study.main(["--smoke", "--out", str(tmp_path)]) == 0
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["table"] == result["table"]
    assert model.stat().st_mtime_ns == stamp
    assert len(list((tmp_path / "eval" / "systems").iterdir())) == 2  # baselines, one lstmc


def test_full_settings_fit_the_two_hour_budget():
    study = _study()
    est = study.estimate_seconds(study.parse_args([]))
    assert sum(est.values()) < 2 * 3600
    assert study.settings_of(study.parse_args([]))[0].runs >= 7000
