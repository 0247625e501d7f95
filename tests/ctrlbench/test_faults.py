"""Fault injection on real ``ctrlbench study`` processes: kill -9 of the driver or of one worker,
SIGINT to the terminal's process group, SIGTERM to a serial study. After a rerun every run is
recorded exactly once, no worker outlives its driver by more than 5 s, and nothing is recorded
as failed that did not fail."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ctrlbench.study import StudySpec

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads worker processes from /proc")

SPEC = """\
name = "faults"
plants = ["ctrlbench/MassSpringDamper-v0"]
controllers = ["pid", "lqr"]
seeds = [{seeds}]
steps = {steps}
"""


def _spec(tmp_path: Path, n_seeds: int = 6, steps: int = 1000) -> tuple[Path, StudySpec]:
    path = tmp_path / "faults.toml"
    path.write_text(SPEC.format(seeds=", ".join(map(str, range(n_seeds))), steps=steps))
    return path, StudySpec.from_file(path)


def _cmd(spec: Path, out: Path, workers: int = 2) -> list[str]:
    return [sys.executable, "-m", "ctrlbench.cli", "study", str(spec), "--out", str(out),
            "--workers", str(workers)]


def _records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]


def _wait_for_records(out: Path, proc: subprocess.Popen, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while len(list((out / "records").glob("*.json"))) < n:
        assert proc.poll() is None, "the study ended before the fault could be injected"
        assert time.monotonic() < deadline, "no records appeared"
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has exited


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _rerun_completes(spec_path: Path, spec: StudySpec, out: Path, workers: int = 2) -> None:
    """A rerun exits 0 and leaves one ok record per run (and no other record)."""
    rerun = subprocess.run(_cmd(spec_path, out, workers), capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "Traceback" not in rerun.stderr
    records = _records(out)
    assert sorted(r["run_id"] for r in records) == sorted(r.run_id for r in spec.runs())
    assert all(r["status"] == "ok" for r in records)


def _start(spec_path: Path, out: Path, workers: int = 2) -> subprocess.Popen:
    # own session: a killpg reaches the driver as a terminal's Ctrl-C reaches its job
    return subprocess.Popen(_cmd(spec_path, out, workers), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _gone_within_5s(pids: list[int]) -> bool:
    deadline = time.monotonic() + 5
    while any(map(_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(map(_alive, pids))


def _kill_a_worker_mid_run(out: Path, proc: subprocess.Popen, tries: int = 3) -> None:
    """``kill -9`` a worker of ``proc`` and wait until its run is recorded failed.

    A worker killed in the instant after it wrote its record (or while idle) loses no run, and
    rightly nothing is recorded failed; then the next worker is killed, up to ``tries`` times.
    """
    for _ in range(tries):
        assert proc.poll() is None, "the study ended before a worker could be killed"
        victim = _children(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while Path(f"/proc/{victim}").exists():  # until the driver has reaped it
            assert time.monotonic() < deadline, "the driver never reaped its killed worker"
            time.sleep(0.02)
        time.sleep(0.2)  # the driver writes the failure right after reaping
        if any(r["status"] == "error" for r in _records(out)):
            return
    pytest.fail(f"{tries} workers killed with kill -9, none recorded as a failed run")


def test_sigint_kill9_of_a_worker_and_of_the_driver_then_a_rerun_records_each_run_once(
        tmp_path):
    """The issue's acceptance, in turn on one folder (24 short runs, 2 workers)."""
    spec_path, spec = _spec(tmp_path, n_seeds=12, steps=400)
    out = tmp_path / "out"

    # 1. Ctrl-C (SIGINT to the process group): exit 130, workers gone, no error record
    proc = _start(spec_path, out)
    _wait_for_records(out, proc, 2)
    workers = _children(proc.pid)
    assert len(workers) == 2
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted (SIGINT)" in stderr and "Traceback" not in stderr, stderr
    assert _gone_within_5s(workers)
    assert all(r["status"] == "ok" for r in _records(out))

    # 2. kill -9 of one worker: its run is recorded failed and the study goes on; then
    # kill -9 of the driver: its workers (the replacement too) exit within 5 s
    done = len(_records(out))
    proc = _start(spec_path, out)
    _wait_for_records(out, proc, done + 2)
    _kill_a_worker_mid_run(out, proc)
    _wait_for_records(out, proc, len(_records(out)) + 1)  # the study goes on
    workers = _children(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    assert _gone_within_5s(workers), "a worker outlived its killed driver by 5 s"
    records = _records(out)
    assert len(records) < len(spec.runs())
    failed = [r for r in records if r["status"] != "ok"]
    assert [r["error"] for r in failed] == [
        "worker process died (killed by SIGKILL) while running it"]

    # 3. the rerun retries the failed run and does the rest: every run ok, each recorded once
    _rerun_completes(spec_path, spec, out)


def test_sigterm_to_a_serial_study_exits_143_without_error_records(tmp_path):
    spec_path, spec = _spec(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(spec_path, out, workers=1), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_records(out, proc, 2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "interrupted (SIGTERM)" in stderr and "Traceback" not in stderr, stderr
    records = _records(out)
    assert records and all(r["status"] == "ok" for r in records)
    assert len(records) < len(spec.runs())


@pytest.mark.slow
def test_kill9_of_the_driver_leaves_no_worker_and_a_rerun_completes(tmp_path):
    spec_path, spec = _spec(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(spec_path, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _wait_for_records(out, proc, 2)
    workers = _children(proc.pid)
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 5
    while any(map(_alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, workers)), "a worker outlived its driver by 5 s"
    n = len(_records(out))
    assert n < len(spec.runs())
    assert all(r["status"] == "ok" for r in _records(out))  # no false failure
    _rerun_completes(spec_path, spec, out)


@pytest.mark.slow
def test_kill9_of_one_worker_records_its_run_failed_and_the_study_goes_on(tmp_path):
    spec_path, spec = _spec(tmp_path)
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(spec_path, out), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _wait_for_records(out, proc, 2)
    _kill_a_worker_mid_run(out, proc)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stderr  # 1: the study finished with a failed run
    assert "Traceback" not in stderr and "BrokenProcessPool" not in stderr
    records = _records(out)
    assert sorted(r["run_id"] for r in records) == sorted(r.run_id for r in spec.runs())
    failed = [r for r in records if r["status"] != "ok"]
    assert len(failed) == 1, failed
    assert failed[0]["error"] == "worker process died (killed by SIGKILL) while running it"
    assert "(1 failed)" in stdout
    _rerun_completes(spec_path, spec, out)  # the failed run is retried


@pytest.mark.slow
def test_sigint_to_the_process_group_exits_130_without_error_records(tmp_path):
    spec_path, spec = _spec(tmp_path)
    out = tmp_path / "out"
    # as a terminal's Ctrl-C: the signal goes to the whole foreground process group
    proc = subprocess.Popen(_cmd(spec_path, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for_records(out, proc, 2)
    workers = _children(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted (SIGINT)" in stderr and "Traceback" not in stderr, stderr
    assert not any(map(_alive, workers))
    records = _records(out)
    assert records and all(r["status"] == "ok" for r in records)
    _rerun_completes(spec_path, spec, out)


@pytest.mark.slow
@pytest.mark.parametrize("at", [1, 4, 8])
def test_faults_at_several_points_then_rerun(tmp_path, at):
    """Deeper: the driver killed, SIGINT (also sent to each worker directly) and a worker
    killed, at several points of a bigger study, in turn on the same folder; the last rerun
    completes with every run once."""
    spec_path, spec = _spec(tmp_path, n_seeds=20, steps=400)
    out = tmp_path / "out"
    for fault in ("driver", "sigint", "worker"):
        done = len(_records(out)) if (out / "records").is_dir() else 0
        proc = _start(spec_path, out)
        _wait_for_records(out, proc, done + at)
        workers = _children(proc.pid)
        if fault == "driver":
            os.kill(proc.pid, signal.SIGKILL)
        elif fault == "sigint":
            for w in workers:  # a worker ignores a Ctrl-C sent to it directly
                os.kill(w, signal.SIGINT)
            os.killpg(proc.pid, signal.SIGINT)
        else:
            _kill_a_worker_mid_run(out, proc)
        _, stderr = proc.communicate(timeout=120)
        assert "Traceback" not in stderr
        assert proc.returncode == {"driver": -9, "sigint": 130, "worker": 1}[fault], stderr
        assert _gone_within_5s(workers)
        errors = [r for r in _records(out) if r["status"] != "ok"]
        assert len(errors) == (fault == "worker")
        assert all("worker process died" in r["error"] for r in errors)
    _rerun_completes(spec_path, spec, out)
