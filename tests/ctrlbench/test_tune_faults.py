"""Fault injection on real ``ctrlbench tune`` processes (slow): kill -9 of the tuner and of a Ray
worker mid-tuning. After reruns every trial is in the storage once, the budget is reached, lost
trials were tried again with their parameters and every run is recorded exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna", reason="tuning needs the tune extra (ctrlbench[tune])")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")]

MSD = "ctrlbench/MassSpringDamper-v0"
NAME = "faults"


def _cmd(out: Path, trials: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "ctrlbench.cli", "tune", MSD, "pid", "--param",
            "bandwidth=1:20:log", "--trials", str(trials), "--seeds", "0,1", "--steps", "3000",
            "--study-name", NAME, "--no-figures", "--out", str(out), *extra]


def _start(cmd: list[str]) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _n_records(out: Path) -> int:
    return len(list((out / "runs" / "records").glob("*.json")))


def _wait_for(out: Path, proc: subprocess.Popen, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while _n_records(out) < n:
        assert proc.poll() is None, "the tuner ended before the fault could be injected"
        assert time.monotonic() < deadline, "no run records appeared"
        time.sleep(0.05)


def _check(out: Path, trials: int) -> list:
    """Each trial once, the budget reached, lost trials retried, each run recorded once."""
    study = optuna.load_study(study_name=NAME, storage=f"sqlite:///{out / 'optuna.db'}")
    all_trials = study.get_trials()
    assert [t.number for t in all_trials] == list(range(len(all_trials)))
    states = [t.state.name for t in all_trials]
    assert "RUNNING" not in states and "WAITING" not in states
    counted = [t for t in all_trials if t.state.name in ("COMPLETE", "PRUNED")
               or (t.state.name == "FAIL" and "error" in t.user_attrs)]
    assert len(counted) == trials
    for lost in (t for t in all_trials if "lost" in t.user_attrs):
        assert lost.state.name == "FAIL"
        assert any(t.number > lost.number and t.params == lost.params for t in counted)
    recs = [json.loads(p.read_text()) for p in (out / "runs" / "records").glob("*.json")]
    ids = [r["run_id"] for r in recs]
    assert len(ids) == len(set(ids))
    for t in counted:  # every run of a complete trial is recorded, with its value
        if t.state.name == "COMPLETE":
            assert len(t.user_attrs["values"]) == 2
    return all_trials


def test_kill9_of_a_serial_tuner_then_a_rerun_continues_from_its_storage(tmp_path):
    out = tmp_path / "tune"
    proc = _start(_cmd(out, 8))
    _wait_for(out, proc, 5)
    proc.kill()
    proc.wait()
    rerun = subprocess.run(_cmd(out, 8), capture_output=True, timeout=300,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert rerun.returncode == 0, rerun.stderr.decode()
    trials = _check(out, 8)
    assert any("lost" in t.user_attrs for t in trials), "the kill landed between trials"
    assert b"left running by a stopped tuner" in rerun.stderr


def _ray_workers() -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if b"ray::ray_run" in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def test_kill9_of_a_ray_worker_and_of_the_ray_tuner_then_a_rerun_completes(tmp_path):
    pytest.importorskip("ray", reason="needs the ray extra")
    out = tmp_path / "tune"
    extra = ("--workers", "2", "--backend", "ray")
    proc = _start(_cmd(out, 8, *extra))
    _wait_for(out, proc, 2)
    deadline = time.monotonic() + 60
    while not (workers := _ray_workers()):
        assert proc.poll() is None and time.monotonic() < deadline, "no Ray worker ran"
        time.sleep(0.05)
    os.kill(workers[0], signal.SIGKILL)  # its run fails, and with it its trial
    n = _n_records(out)
    _wait_for(out, proc, n + 3)
    proc.kill()  # the tuner itself, mid-batch
    proc.wait()
    rerun = subprocess.run(_cmd(out, 8, *extra), capture_output=True, timeout=300,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert rerun.returncode == 0, rerun.stderr.decode()
    trials = _check(out, 8)
    failed = [t for t in trials if "error" in t.user_attrs]
    assert any("Ray worker died" in t.user_attrs["error"] for t in failed)
