"""``studies/laser_temporl.py``: the reach count, the table, and ``--smoke`` end to end."""

from __future__ import annotations

import json

from tests.fixtures.studies import load_study


def test_full_settings_run_every_method_on_three_seeds():
    study = load_study("laser_temporl")
    args = study.Args()
    assert args.seeds >= 3 and not args.smoke
    assert study.METHODS == ("linear", "de", "bo", "sac", "ppo")


def test_reach_counts_evaluations_to_the_first_best_so_far_below_target():
    study = load_study("laser_temporl")
    assert study._reach([3.0, 2.0, 1.7, 1.9, 1.5], 1.6) == 5
    assert study._reach([3.0, 1.6, 2.0], 1.6) == 2
    assert study._reach([3.0, 2.0], 1.0) is None


def test_settle_counts_steps_until_the_trace_stays_near_its_end():
    study = load_study("laser_temporl")
    assert study._settle([10.0, 5.0, 2.0, 1.6, 1.6]) == 3
    assert study._settle([1.6, 3.0, 1.6]) == 2  # leaving and coming back counts
    assert study._settle([1.6]) == 0


def test_bad_arguments_exit_with_a_message(capsys):
    study = load_study("laser_temporl")
    assert study.main(["--seeds", "0"]) == 2
    assert "seeds = 0" in capsys.readouterr().err


def test_smoke_study_writes_its_table_and_reuses_finished_cells(tmp_path):
    study = load_study("laser_temporl")
    out = tmp_path / "laser"
    assert study.main(["--smoke", "--out", str(out)]) == 0
    data = json.loads((out / "results.json").read_text())
    rows = {r["method"]: r for r in data["table"]}
    assert set(rows) == set(study.METHODS)
    tl = data["transform_limit_ps"]
    assert abs(rows["linear"]["fwhm_mean"] - 1.9825) < 1e-3 and rows["linear"]["evaluations"] == 1
    assert rows["de"]["evaluations"] <= 40 and rows["bo"]["evaluations"] <= 8
    for row in rows.values():
        assert row["fwhm_best"] > 0.95 * tl
    assert (out / "curves.png").exists() and (out / "pulses.png").exists()
    assert "| linear |" in (out / "results.md").read_text()
    assert "git_commit" in data["provenance"] and data["provenance"]["command"]
    assert "## Provenance" in (out / "results.md").read_text()
    cell = out / "cells" / "sac_s0.json"
    stamp = cell.stat().st_mtime_ns
    assert study.main(["--smoke", "--out", str(out)]) == 0  # finished cells are reused
    assert cell.stat().st_mtime_ns == stamp
