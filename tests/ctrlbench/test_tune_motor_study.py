"""``studies/motor_tune.py`` (tuned vs design-rule PMSM current PI): its settings, and the
``--smoke`` study tuning, comparing on held-out seeds and reporting."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.studies import load_study

pytest.importorskip("optuna", reason="tuning needs the tune extra (ctrlbench[tune])")
pytest.importorskip("gym_electric_motor", reason="the PMSM plant needs the motor extra")


def test_full_settings_keep_tuning_and_heldout_seeds_apart():
    args = load_study("motor_tune")._parse([])
    assert args.trials >= 20 and not args.smoke
    assert not set(args.train_seeds) & set(args.heldout_seeds) and len(args.heldout_seeds) >= 5


@pytest.mark.slow  # ~4 s (the default suite is at its time budget): 3 trials + 8 held-out runs
def test_smoke_study_tunes_compares_and_reports(tmp_path):
    study = load_study("motor_tune")
    res = study.run(study._parse(["--smoke", "--out", str(tmp_path / "mt")]))
    assert res["tuned"].finished == 3
    assert all(set(v) == {100, 101} for v in res["iae"].values()) and len(res["iae"]) == 4
    text = study.report(res)
    assert "| mean ± std |" in text and "3 trials finished" in text
    best = json.loads((tmp_path / "mt" / "tune" / "best_options.json").read_text())
    assert best["options"] == res["best"] and best["controller"] == "pid"
    assert set(best["options"]) == {"kp_scale", "ki_scale"}
    for name in ("tune/tune.md", "tune/history.png", "heldout/report.md"):
        assert (tmp_path / "mt" / name).is_file()
