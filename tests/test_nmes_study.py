"""``studies/nmes_rise.py``: arguments, tables, and the ``--smoke`` study writing its files and
resuming from its caches."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.fixtures.studies import load_study


def _study():
    return load_study("nmes_rise")


def test_full_settings_meet_the_brief():
    args = _study().parse_args([])
    assert args.patients >= 7 and args.steps == 800 and not args.smoke


def test_bad_arguments_exit_with_a_message(capsys):
    assert _study().main(["--patients", "0"]) == 2
    assert "patients = 0" in capsys.readouterr().err


def test_table_takes_medians_and_counts_early_ends():
    study = _study()
    run = {"rmse_deg": 1.0, "fitness_end": 0.9, "effort_us": 100.0, "early_end": False}
    results: list[dict[str, Any]] = [{"runs": {c: {**run, "rmse_deg": float(p), "early_end": p == 2}
                         for c in study.CONTROLLERS}} for p in range(3)]
    results[0]["runs"]["mpc"] = {"error": "boom"}
    tab = {t["controller"]: t for t in study.table(results)}
    assert tab["pid"]["rmse_deg"] == 1.0 and tab["pid"]["early_end"] == 1
    assert tab["pid"]["rmse_completed_deg"] == 0.5  # patients 0 and 1 only
    assert tab["mpc"]["errors"] == 1 and tab["mpc"]["rmse_deg"] == 1.5


@pytest.mark.slow
def test_smoke_study_writes_its_files_and_resumes(tmp_path):
    study = _study()
    assert study.main(["--smoke", "--out", str(tmp_path)]) == 0
    table = (tmp_path / "results.md").read_text()
    for ctrl in study.CONTROLLERS:
        assert f"| {ctrl} |" in table
    result = json.loads((tmp_path / "results.json").read_text())
    assert {t["controller"] for t in result["table"]} == set(study.CONTROLLERS)
    assert set(result["ident"]) == {"nn", "sindy"}
    assert (tmp_path / "figure.png").stat().st_size > 10_000
    cache = tmp_path / "patients" / "0.json"
    stamp = cache.stat().st_mtime_ns
    assert study.main(["--smoke", "--out", str(tmp_path)]) == 0  # resumes: nothing redone
    assert cache.stat().st_mtime_ns == stamp
    assert json.loads((tmp_path / "results.json").read_text())["table"] == result["table"]
