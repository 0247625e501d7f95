"""A study folder belongs to one study: lock, spec check, --overwrite, damaged and foreign records
quarantined and re-run, reports that name what they leave out, no NaN recorded as ok, and no
record written for an interrupted run."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from ctrlbench.cli import main
from ctrlbench.interrupt import handle_signals
from ctrlbench.records import scan_records
from ctrlbench.report import build_report
from ctrlbench.runfolder import FolderBusyError, RunFolderError, lock_folder
from ctrlbench.study import RunSpec, StudySpec, execute_run, load_records, run_study
from ctrlbench.study_pool import StudyWorkerError

MSD = "ctrlbench/MassSpringDamper-v0"


def small(seeds=(0, 1), name="small", **kw) -> StudySpec:
    return StudySpec(name, (MSD,), ("pid",), seeds=seeds, steps=5, **kw)


def one_line_error(capsys) -> str:
    """The one ``error:`` line of stderr (warnings may precede it); no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and lines and "error:" in lines[-1], err
    assert all(": warning: " in line for line in lines[:-1]), err
    return lines[-1]


def test_a_second_writer_is_refused_naming_the_pid(tmp_path):
    with lock_folder(tmp_path, "study"), pytest.raises(FolderBusyError, match=f"pid {os.getpid()}"):
        run_study(small(), tmp_path)


def test_another_specs_folder_is_refused_and_overwrite_moves_it_aside(tmp_path, capsys):
    out = tmp_path / "out"
    run_study(small(), out)
    with pytest.raises(RunFolderError, match=r"holds another study \('small'; the specs differ "
                                             r"in seeds\).*--overwrite"):
        run_study(small(seeds=(5,)), out)
    assert len(load_records(out)) == 2  # untouched
    warnings: list[str] = []
    records = run_study(small(seeds=(5,)), out, overwrite=True, on_warning=warnings.append)
    assert [r["seed"] for r in records] == [5]
    (aside,) = tmp_path.glob("out.old-*")
    assert warnings == [f"moved the previous study in {str(out)!r} to {str(aside)!r}"]
    assert len(list((aside / "records").glob("*.json"))) == 2
    # resuming the same spec is the documented way to continue: nothing new runs
    again: list[dict] = []
    run_study(small(seeds=(5,)), out, on_done=again.append)
    assert again == []


def test_cli_study_refuses_another_spec_in_one_line_and_overwrite_works(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    out = tmp_path / "out"
    spec.write_text(f'name = "s"\nplants = ["{MSD}"]\ncontrollers = ["pid"]\nsteps = 3\n')
    assert main(["study", str(spec), "--out", str(out)]) == 0
    assert main(["study", str(spec), "--out", str(out), "--steps", "4"]) == 2
    assert "holds another study ('s'; the specs differ in steps)" in one_line_error(capsys)
    assert main(["study", str(spec), "--out", str(out), "--steps", "4", "--overwrite"]) == 0
    captured = capsys.readouterr()
    assert "warning: moved the previous study" in captured.err
    assert [r["steps"] for r in load_records(out)] == [4]


def _damage(out: Path) -> dict[str, str]:
    """Damage four records in four ways; return {file name: expected reason}."""
    paths = sorted((out / "records").glob("*.json"))
    rec = json.loads(paths[3].read_text())
    rec["seed"] = 99  # edited: no longer the run its id names
    paths[0].write_text('{"run_id": "x", ')
    paths[1].write_text("[1, 2]")
    paths[2].write_text(json.dumps({"run_id": paths[2].stem}))
    paths[3].write_text(json.dumps(rec))
    paths[4].write_text("")
    return {paths[0].name: "not valid JSON", paths[1].name: "not a JSON object (a JSON list)",
            paths[2].name: "missing key(s)", paths[3].name: "do not match its run_id",
            paths[4].name: "empty file"}


def test_damaged_and_foreign_records_are_named_quarantined_and_rerun(tmp_path):
    out, other = tmp_path / "out", tmp_path / "other"
    spec = small(seeds=(0, 1, 2, 3, 4, 5))
    run_study(spec, out)
    run_study(small(seeds=(7,), name="other"), other)
    (foreign,) = (other / "records").glob("*.json")
    shutil.copy(foreign, out / "records")
    expected = _damage(out)
    expected[foreign.name] = "belongs to another study"
    # the report names every unusable file and leaves it out (files are not moved)
    report_warnings: list[str] = []
    build_report(out, figures=False, on_warning=report_warnings.append)
    assert len(report_warnings) == 6
    for name, why in expected.items():
        assert any(name in w and why in w for w in report_warnings), (name, report_warnings)
    assert foreign.stem not in (out / "report.md").read_text() + (out / "records.csv").read_text()
    # the study quarantines them (with a note) and re-runs its own five
    warnings: list[str] = []
    redone: list[dict] = []
    records = run_study(spec, out, on_warning=warnings.append, on_done=redone.append)
    assert len(warnings) == 6 and all("moved to quarantine/" in w for w in warnings)
    assert len(redone) == 5
    assert sorted(r["run_id"] for r in records) == sorted(r.run_id for r in spec.runs())
    assert all(r["status"] == "ok" for r in records)
    quarantined = {p.name for p in (out / "quarantine").iterdir()}
    for name, why in expected.items():
        assert name in quarantined
        assert why in (out / "quarantine" / f"{name}.why.txt").read_text()
    assert scan_records(out, {r.run_id for r in spec.runs()}).problems == []


def test_a_damaged_trajectory_is_named_by_report_and_redone_by_study(tmp_path, capsys):
    out = tmp_path / "out"
    spec = small()
    run_study(spec, out)
    rec = load_records(out)[0]
    npz = out / rec["trajectory"]
    npz.write_bytes(npz.read_bytes()[:100])  # truncated
    assert main(["report", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {rec['run_id']}: its trajectory {str(npz)!r} does not load" in err
    assert "Traceback" not in err
    warnings: list[str] = []
    redone: list[dict] = []
    run_study(spec, out, on_warning=warnings.append, on_done=redone.append)
    assert [r["run_id"] for r in redone] == [rec["run_id"]]
    assert any(str(npz) in w and "does not load" in w for w in warnings)
    with np.load(npz) as z:
        assert z["actions"].shape == (5, 1)


def test_an_ok_record_with_nan_metrics_is_damaged(tmp_path):
    out = tmp_path / "out"
    run_study(small(seeds=(0,)), out)
    (path,) = (out / "records").glob("*.json")
    rec = json.loads(path.read_text())
    rec["metrics"]["iae"] = float("nan")
    path.write_text(json.dumps(rec))
    (problem,) = scan_records(out).problems
    assert "status ok with a non-finite metric iae = nan" in problem[1]


def _not_a_study(kind: str, tmp: Path) -> Path:
    if kind == "file":
        (tmp / "f.txt").write_text("x")
        return tmp / "f.txt"
    if kind == "junk":
        (tmp / "records").mkdir()
        (tmp / "records" / "a.json").write_text("[]")
    return tmp / "missing" if kind == "missing" else tmp


@pytest.mark.parametrize(("kind", "message"), [
    ("missing", "does not exist"),
    ("file", "is a file, not a study folder"),
    ("empty", "holds no study (no records/ folder)"),
    ("junk", "no valid run records"),
])
def test_report_on_what_is_not_a_study_is_one_clear_line(tmp_path, capsys, kind, message):
    assert main(["report", str(_not_a_study(kind, tmp_path))]) == 2
    assert message in one_line_error(capsys)


def test_a_run_with_non_finite_signals_is_an_error_not_ok(tmp_path, monkeypatch):
    sim = importlib.import_module("ctrlbench.simulate")  # the package exports the function

    real = sim.simulate

    def diverging(*args, **kwargs):
        traj = real(*args, **kwargs)
        traj.observations[3, 1] = np.inf
        return traj

    monkeypatch.setattr(sim, "simulate", diverging)
    rec = execute_run(RunSpec(MSD, "pid", 0, 5), tmp_path)
    assert rec["status"] == "error"
    assert rec["error"].startswith("non-finite result: non-finite observation 'v' (inf) at "
                                   "sample 3")
    assert load_records(tmp_path)[0]["status"] == "error"


def test_an_interrupt_a_solver_swallowed_is_not_recorded(tmp_path, monkeypatch):
    """Like scipy's ``ode``: the callback's KeyboardInterrupt is swallowed and the solver fails
    with another error; the run must end the study (exit 130), not become an error record."""
    sim = importlib.import_module("ctrlbench.simulate")  # the package exports the function

    def swallowing(*args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except BaseException:
            pass
        raise RuntimeError("integrator failed")

    monkeypatch.setattr(sim, "simulate", swallowing)
    with handle_signals(), pytest.raises(KeyboardInterrupt):
        execute_run(RunSpec(MSD, "pid", 0, 5), tmp_path)
    assert not (tmp_path / "records").exists()


@pytest.mark.parametrize("workers", [0, -1, True, 257, 1.5])
def test_run_study_refuses_bad_worker_counts(tmp_path, workers):
    with pytest.raises(ValueError, match=r"workers must be an integer in \[1, 256\]"):
        run_study(small(), tmp_path, workers=workers)
    assert not any(tmp_path.iterdir())


def test_workers_load_a_py_spec_that_registers_its_own_controllers(tmp_path):
    from tests.ctrlbench.test_study import write_spec

    spec_path = write_spec(tmp_path, ("pd-test",), (0,), 5)
    spec = StudySpec.from_file(spec_path)
    records = run_study(spec, tmp_path / "out", workers=2, preload=[spec_path])
    assert [r["status"] for r in records] == ["ok", "ok"]


def test_a_worker_that_cannot_start_is_one_clear_error(tmp_path):
    bad = tmp_path / "only_here.py"
    bad.write_text(f"import os\nassert os.getpid() == {os.getpid()}, 'not in a worker'\n")
    with pytest.raises(StudyWorkerError, match="worker start-up failed: AssertionError: not in "
                                               "a worker"):
        run_study(small(), tmp_path / "out", workers=2, preload=[bad])
    assert load_records(tmp_path / "out") == []


def test_odd_folder_states_are_named_and_mended(tmp_path):
    out, other = tmp_path / "out", tmp_path / "other"
    spec = small()
    run_study(spec, out)
    run_study(small(seeds=(7,), name="other"), other)
    # an older folder without runs.json: the report judges records by spec.json's fields
    (out / "runs.json").unlink()
    shutil.copy(next((other / "records").glob("*.json")), out / "records")
    warnings: list[str] = []
    build_report(out, figures=False, on_warning=warnings.append)
    assert len(warnings) == 1 and "belongs to another study" in warnings[0]
    # an unreadable spec.json and a file where records/ belongs are set aside, then redone
    (out / "spec.json").write_text("{")
    shutil.rmtree(out / "records")
    (out / "records").write_text("x")
    warnings.clear()
    records = run_study(spec, out, on_warning=warnings.append)
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert any("spec.json: unreadable" in w for w in warnings)
    assert any("a file where the folder records/ belongs" in w for w in warnings)
    assert {"spec.json", "records"} <= {p.name for p in (out / "quarantine").iterdir()}
