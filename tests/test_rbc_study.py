"""``studies/rbc_baseline.py`` (``--smoke`` end to end, resume) and the solver bench."""

from __future__ import annotations

import json

import pytest

from ctrlbench.provenance import format_provenance
from tests.fixtures.studies import load_study

pytest.importorskip("torch")


def test_smoke_study_writes_its_tables_and_reuses_finished_cells(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CTRLBENCH_CACHE", str(tmp_path / "cache"))
    study = load_study("rbc_baseline")
    out = tmp_path / "rbc"
    assert study.main(["--smoke", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert set(res["convergence"]["runs"]) == {"base", "dt/2", "grid x1.5"}
    assert set(res["control"]) == {"zero", "rbc-pd kp=5", "rbc-mode m=1 (first 1)"}
    assert len(res["uncontrolled"]["final"]["rolls"]) == 2
    assert res["provenance"]["git_commit"]
    for png in ("uncontrolled_nu.png", "control_nu.png", "temperature.png"):
        assert (out / png).stat().st_size > 0
    capsys.readouterr()
    assert study.main(["--smoke", "--out", str(out)]) == 0
    assert capsys.readouterr().out.count("done before, skipped") == 8
    # a cell saved under other settings is recomputed, the others are reused
    assert study.main(["--smoke", "--out", str(out), "--after", "1"]) == 0
    said = capsys.readouterr().out
    assert said.count("recomputed") == 3 and said.count("done before, skipped") == 5
    assert study.main(["--smoke", "--out", str(out), "--modes", "8,"]) == 2   # nx 16: below 8


def test_full_settings_are_the_papers(capsys):
    study = load_study("rbc_baseline")
    args = study.Args()
    assert (args.nx, args.ny, args.dt, args.t_end, args.actions) == (96, 64, 0.05, 400.0, 200)
    assert study.main(["--seeds", "0"]) == 2
    assert "seeds = 0" in capsys.readouterr().err


def test_solver_bench_quick_runs(tmp_path, capsys):
    bench = load_study("bench/rbc_solver")
    out = tmp_path / "b.json"
    assert bench.main(["--quick", "--steps", "2", "--repeats", "1", "--batches", "1,",
                       "--develop", "0", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    rows = data["rows"]
    assert rows[0]["batch"] == 1 and rows[0]["ms_per_step"] > 0
    prov = data["provenance"]  # commit, dirty tree, versions, threads, machine, command
    assert {"git_commit", "git_dirty", "packages", "threads", "cpu", "gpu", "command"} <= set(prov)
    assert prov["threads"]["torch"] == 1 and prov["packages"]["torch"] != "not installed"
    said = capsys.readouterr().out  # the printed summary ends with the same block
    assert said.endswith(format_provenance(prov))
