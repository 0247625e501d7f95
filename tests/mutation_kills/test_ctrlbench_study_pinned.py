"""Pinned behaviour of ctrlbench/study.py that its own tests leave open (mutation survivors):
the exact files and messages a study writes, what a run passes on to the plant, controller and
simulator, and the edges of the in-process / pool choice."""

from __future__ import annotations

import json
import os
import signal
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ctrlbench.interrupt as interrupt
import ctrlbench.registry as registry
from ctrlbench.interrupt import Interrupted
from ctrlbench.metrics import summary, units
from ctrlbench.records import FOREIGN, write_record
from ctrlbench.registry import make_controller, make_plant
from ctrlbench.runfolder import FolderBusyError, RunFolderError, lock_folder
from ctrlbench.simulate import simulate
from ctrlbench.study import MAX_WORKERS, RunSpec, StudySpec, execute_run, load_records, run_study
from ctrlbench.trajectory import Trajectory

MSD = "ctrlbench/MassSpringDamper-v0"


def small(seeds: tuple[int, ...] = (0,), name: str = "pinned", **kw: Any) -> StudySpec:
    return StudySpec(name, (MSD,), ("pid",), seeds=seeds, steps=3, **kw)


def spec_dict(spec: StudySpec) -> dict[str, Any]:
    """spec.json's content, written out by hand (tuples as lists)."""
    return {"name": spec.name, "plants": list(spec.plants), "controllers": list(spec.controllers),
            "seeds": list(spec.seeds), "steps": spec.steps,
            "plant_options": dict(spec.plant_options),
            "controller_options": {k: dict(v) for k, v in spec.controller_options.items()},
            "grid": {k: list(v) for k, v in spec.grid.items()},
            "timeout_s": spec.timeout_s, "resources": dict(spec.resources)}


# --- the files a study writes -------------------------------------------------------------------

def test_spec_runs_and_provenance_files_are_one_space_indented_json(tmp_path):
    spec = small(seeds=(2, 1), grid={"controller.bandwidth": (3.0, 5.0)})
    records = run_study(spec, tmp_path)
    assert len(records) == 4
    # spec.json: the dataclass fields in declaration order, indent 1
    assert (tmp_path / "spec.json").read_text() == json.dumps(spec_dict(spec), indent=1)
    ids = sorted(r["run_id"] for r in records)
    assert (tmp_path / "runs.json").read_text() == json.dumps({"run_ids": ids}, indent=1)
    text = (tmp_path / "provenance.json").read_text()
    (session,) = json.loads(text)["sessions"]
    assert session["workers"] == 1 and session["backend"] == "local"
    assert text == json.dumps({"sessions": [session]}, indent=1)


def test_the_run_writes_its_trajectory_under_trajectories_with_meta_and_units(tmp_path):
    run = RunSpec(MSD, "pid", seed=7, steps=6)
    rec = execute_run(run, tmp_path)
    assert rec["status"] == "ok"
    assert rec["trajectory"] == f"trajectories/{run.run_id}.npz"
    traj = Trajectory.load(tmp_path / rec["trajectory"])
    assert traj.meta == {"plant": MSD, "controller": "pid", "dt": 0.01, "seed": 7}
    assert rec["units"] == units(traj) and rec["units"]


def test_the_run_passes_its_seed_and_options_on(tmp_path):
    # m = 3 kg, k = 5 N/m, bandwidth 2.5 rad/s: all non-default; a small reference range keeps
    # the force off its +-10 N limit, and seed 11 draws the reference
    popts = {"m": 3.0, "k": 5.0, "ref_range": 0.05}
    run = RunSpec(MSD, "pid", seed=11, steps=8, plant_options=popts,
                  controller_options={"bandwidth": 2.5})
    rec = execute_run(run, tmp_path)
    plant = make_plant(MSD, **popts)
    expected = simulate(plant, make_controller("pid", plant, bandwidth=2.5), steps=8, seed=11)
    traj = Trajectory.load(tmp_path / rec["trajectory"])
    np.testing.assert_array_equal(traj.observations, expected.observations)
    np.testing.assert_array_equal(traj.actions, expected.actions)
    metrics = summary(expected)
    assert sorted(rec["metrics"]) == sorted(metrics)
    np.testing.assert_array_equal([rec["metrics"][k] for k in metrics], list(metrics.values()))
    # and each of them matters: not at the limit, and other options or seed give other runs
    assert np.abs(expected.actions).max() < 10.0
    other_ctrl = simulate(plant, make_controller("pid", plant), steps=8, seed=11)
    assert not np.allclose(other_ctrl.actions, expected.actions)
    default = make_plant(MSD, ref_range=0.05)
    other_plant = simulate(default, make_controller("pid", default, bandwidth=2.5), steps=8,
                           seed=11)
    assert not np.allclose(other_plant.observations, expected.observations)
    seed12 = simulate(plant, make_controller("pid", plant, bandwidth=2.5), steps=8, seed=12)
    assert seed12.observations[0, 2] != expected.observations[0, 2]


def test_a_failing_run_records_its_error_type_and_a_five_frame_traceback(tmp_path, monkeypatch):
    # a chain of distinct functions (a recursion would be folded: "[Previous line repeated]")
    def f4() -> None:
        raise ValueError("boom at the bottom")

    def f3() -> None:
        f4()

    def f2() -> None:
        f3()

    def f1() -> None:
        f2()

    def make_fails(*args: Any, **kwargs: Any) -> Any:
        f1()

    monkeypatch.setattr(registry, "make_controller", make_fails)
    rec = execute_run(RunSpec(MSD, "pid", seed=0, steps=2), tmp_path)
    assert rec["status"] == "error" and rec["error"] == "ValueError: boom at the bottom"
    tb = rec["traceback"]
    assert tb.startswith("Traceback (most recent call last):\n")
    assert tb.count('  File "') == 5  # limit=5: the first five frames of 6
    assert "in f3" in tb and "in f4" not in tb
    assert tb.rstrip().endswith("ValueError: boom at the bottom")
    # the record on disk is the one returned
    on_disk = json.loads((tmp_path / "records" / f"{rec['run_id']}.json").read_text())
    assert on_disk["traceback"] == tb


def test_the_plant_is_closed_after_the_run(tmp_path, monkeypatch):
    closed: list[str] = []
    real = registry.make_plant

    def make_spy(*args: Any, **kwargs: Any) -> Any:
        plant = real(*args, **kwargs)
        close = plant.close

        def spy() -> None:
            closed.append("closed")
            close()

        plant.close = spy
        return plant

    monkeypatch.setattr(registry, "make_plant", make_spy)
    assert execute_run(RunSpec(MSD, "pid", seed=0, steps=2), tmp_path)["status"] == "ok"
    assert closed == ["closed"]


def test_an_interrupt_behind_an_error_is_raised_from_that_error(tmp_path, monkeypatch):
    def make_fails(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(interrupt, "_pending", signal.SIGINT)  # a handler swallowed Ctrl-C
        raise RuntimeError("solver failed after the interrupt")

    monkeypatch.setattr(registry, "make_plant", make_fails)
    with pytest.raises(Interrupted) as info:
        execute_run(RunSpec(MSD, "pid", seed=0, steps=2), tmp_path)
    assert isinstance(info.value.__context__, RuntimeError)  # raised while handling it
    assert interrupt.pending_signal() is None
    assert not (tmp_path / "records").exists()


# --- the spec check ----------------------------------------------------------------------------

def test_spec_json_with_its_keys_in_another_order_is_the_same_spec(tmp_path):
    spec = small(grid={"controller.bandwidth": (3.0,)}, plant_options={"m": 2.0, "k": 4.0})
    tmp_path.mkdir(exist_ok=True)
    data = spec_dict(spec)
    data["plant_options"] = {"k": 4.0, "m": 2.0}
    reordered = dict(reversed(list(data.items())))
    (tmp_path / "spec.json").write_text(json.dumps(reordered))
    warned: list[str] = []
    assert len(run_study(spec, tmp_path, on_warning=warned.append)) == 1
    assert warned == []


def test_another_spec_names_every_field_that_differs_also_one_it_lacks(tmp_path):
    out = tmp_path / "out"
    run_study(small(name="first"), out)
    data = json.loads((out / "spec.json").read_text())
    data["extra"] = 1
    (out / "spec.json").write_text(json.dumps(data))
    with pytest.raises(RunFolderError) as info:
        run_study(small(name="first", seeds=(4,)), out)
    assert str(info.value).startswith(
        f"{str(out)!r} holds another study ('first'; the specs differ in extra, seeds): ")
    with pytest.raises(RunFolderError, match=r"differ in extra, name, seeds\)"):
        run_study(small(name="second", seeds=(4,)), out)


@pytest.mark.parametrize("content, problem", [("[1, 2]", "not a JSON object"),
                                              ("{", "Expecting property name")])
def test_an_unreadable_spec_json_is_quarantined_with_its_reason(tmp_path, content, problem):
    (tmp_path / "spec.json").write_text(content)
    warned: list[str] = []
    run_study(small(), tmp_path, on_warning=warned.append)
    (msg,) = warned
    assert msg.startswith(f"{tmp_path / 'spec.json'}: unreadable ({problem}")
    where = tmp_path / "quarantine" / "spec.json"
    assert where.read_text() == content
    why = (tmp_path / "quarantine" / "spec.json.why.txt").read_text()
    assert why.startswith(f"{tmp_path / 'spec.json'}: unreadable spec.json ({problem}")


def test_overwrite_moves_aside_only_a_folder_that_holds_a_study(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    warned: list[str] = []
    run_study(small(), out, overwrite=True, on_warning=warned.append)
    assert warned == [] and (out / "notes.txt").read_text() == "mine"
    assert not list(tmp_path.glob("out.old-*"))


def test_the_lock_names_a_study(tmp_path):
    # the busy message names what the refused caller is: run_study locks as a "study"
    with lock_folder(tmp_path, "tool"), pytest.raises(
            FolderBusyError, match=rf"in use by another study \(pid {os.getpid()}\)"):
        run_study(small(), tmp_path)


# --- tidying, damaged provenance and records ---------------------------------------------------

def test_tidy_removes_temporaries_and_quarantines_files_where_folders_belong(tmp_path):
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / ".x.json.tmp").write_text("partial")
    (tmp_path / "trajectories").write_text("not a folder")
    warned: list[str] = []
    run_study(small(), tmp_path, on_warning=warned.append)
    assert not (tmp_path / "records" / ".x.json.tmp").exists()
    where = tmp_path / "quarantine" / "trajectories"
    assert warned == [f"{tmp_path / 'trajectories'}: a file where the folder trajectories/ "
                      f"belongs; moved to {where}"]
    assert where.read_text() == "not a folder"
    assert (tmp_path / "quarantine" / "trajectories.why.txt").read_text() == (
        f"{tmp_path / 'trajectories'}: a file where the folder trajectories/ belongs\n")
    (tmp_path / "trajectories" / ".y.npz.tmp").write_text("partial")
    run_study(small(), tmp_path, on_warning=warned.append)
    assert not (tmp_path / "trajectories" / ".y.npz.tmp").exists()


def test_a_damaged_provenance_file_is_quarantined_and_a_new_one_started(tmp_path):
    (tmp_path / "provenance.json").write_text('{"sessions": 3}')
    warned: list[str] = []
    run_study(small(), tmp_path, workers=2, on_warning=warned.append)
    path = tmp_path / "provenance.json"
    where = tmp_path / "quarantine" / "provenance.json"
    problem = f"{str(path)!r} is not {{\"sessions\": [{{...}}, ...]}}"
    assert warned == [f"{path}: {problem}; moved to {where}, the earlier sessions' provenance is "
                      f"there"]
    assert where.read_text() == '{"sessions": 3}'
    assert (tmp_path / "quarantine" / "provenance.json.why.txt").read_text() == (
        f"{path}: {problem}\n")
    (session,) = json.loads(path.read_text())["sessions"]
    assert session["workers"] == 2


def test_damaged_and_foreign_records_are_named_with_what_happens_to_them(tmp_path):
    spec = small()
    run_study(spec, tmp_path)
    (tmp_path / "records" / "broken.json").write_text("{")
    other = RunSpec(MSD, "pid", seed=99, steps=3)
    write_record(tmp_path, {"run_id": other.run_id, **asdict(other), "status": "error",
                            "error": "x"})
    warned: list[str] = []
    run_study(spec, tmp_path, on_warning=warned.append)
    rec_dir = tmp_path / "records"
    assert sorted(warned) == sorted([
        f"{rec_dir / 'broken.json'}: not valid JSON (Expecting property name enclosed in double "
        f"quotes: line 1 column 2 (char 1)); moved to quarantine/, the run will be redone",
        f"{rec_dir / (other.run_id + '.json')}: {FOREIGN}; moved to quarantine/",
    ]), warned


def test_default_warnings_are_runtime_warnings(tmp_path):
    # which frame they name (stacklevel=3: the caller of run_study) is not pinned exactly, as
    # mutmut's trampoline adds frames; only that it is not the warning helper's own line
    run_study(small(), tmp_path)
    (tmp_path / "records" / "broken.json").write_text("{")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_study(small(), tmp_path)
    (w,) = [w for w in caught if "broken.json" in str(w.message)]
    assert w.category is RuntimeWarning
    assert str(w.message).endswith("; moved to quarantine/, the run will be redone")
    assert not Path(w.filename).as_posix().endswith("ctrlbench/study.py")


# --- in process or in a pool -------------------------------------------------------------------

def test_the_largest_pool_is_allowed_and_one_more_is_not(tmp_path):
    assert len(run_study(small(), tmp_path, workers=MAX_WORKERS)) == 1
    with pytest.raises(ValueError, match=r"\[1, 256\], got 257"):
        run_study(small(), tmp_path, workers=MAX_WORKERS + 1)


def test_a_single_run_runs_in_this_process_even_with_workers(tmp_path):
    # preload files are run by pool workers only; a single run never starts one
    marker = tmp_path / "preloaded"
    script = tmp_path / "pre.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    records = run_study(small(), tmp_path / "out", workers=4, preload=[script])
    assert [r["status"] for r in records] == ["ok"]
    assert not marker.exists()


@pytest.mark.slow  # starts two worker processes (~1 s); selected in this module's mutation runs
def test_a_pool_writes_its_records_into_the_study_folder(tmp_path):
    out = tmp_path / "out"
    records = run_study(small(seeds=(0, 1)), out, workers=2)
    assert sorted(r["seed"] for r in records) == [0, 1]
    assert sorted(r["seed"] for r in load_records(out)) == [0, 1]


@pytest.mark.slow  # starts one worker process (~0.5 s); selected in this module's mutation runs
def test_a_timeout_with_one_worker_runs_every_run_in_that_one_worker_process(tmp_path):
    # a timeout needs a worker process even for workers=1: one, not two, for the two runs
    log = tmp_path / "pids.txt"
    script = tmp_path / "pre.py"
    script.write_text(f"import os\nwith open({str(log)!r}, 'a') as f:\n"
                      f"    f.write(str(os.getpid()) + '\\n')\n")
    records = run_study(small(seeds=(0, 1)), tmp_path / "out", workers=1, preload=[script],
                        timeout_s=60.0)
    assert [r["status"] for r in records] == ["ok", "ok"]
    pids = log.read_text().split()
    assert len(pids) == 1 and pids[0] != str(os.getpid())


# --- argument checks ---------------------------------------------------------------------------

def test_a_bad_backend_address_or_timeout_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError) as info:
        run_study(small(), out, backend="dask")
    assert str(info.value) == "unknown study backend 'dask'; valid backends: ['local', 'ray']"
    with pytest.raises(ValueError) as info:
        run_study(small(), out, address="auto")
    assert str(info.value) == "a Ray address ('auto') needs backend='ray', got 'local'"
    # with backend="ray" an address is allowed: the timeout check after it is what refuses
    with pytest.raises(ValueError) as info:
        run_study(small(), out, backend="ray", address="auto", timeout_s=-1.0)
    assert str(info.value) == ("timeout_s = -1.0 is out of range; valid: a finite number of "
                               "seconds > 0")
    with pytest.raises(ValueError) as info:  # the argument overrides the spec's valid limit
        run_study(small(timeout_s=30.0), out, timeout_s=0)
    assert str(info.value) == "timeout_s = 0 is out of range; valid: a finite number of seconds > 0"
    assert not out.exists()
