"""The Ray study backend: the same records as the local backend, worker deaths and run timeouts
recorded as failures, interrupts and driver kills leave nothing half-recorded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray backend needs the ray extra (ctrlbench[ray])")

from ctrlbench.study import StudySpec, run_study  # noqa: E402

MSD = "ctrlbench/MassSpringDamper-v0"

# registers "ray-test": PD on the mass-spring-damper that can sleep per step or kill its own
# process (a real worker death), chosen by its options
SPEC_PY = textwrap.dedent(
    '''
    from dataclasses import dataclass
    import os, signal, time
    import numpy as np
    from ctrlbench.controller import FeedbackController
    from ctrlbench.options import Options, option
    from ctrlbench.registry import CONTROLLERS
    from ctrlbench.study import StudySpec

    @dataclass(frozen=True)
    class TestOptions(Options):
        pause: float = option(0.0, "seconds to sleep per step", ge=0)
        die: bool = option(False, "SIGKILL the own process at the first step")

    class PD(FeedbackController):
        def __init__(self, dt, opts):
            super().__init__(dt)
            self.opts = opts
        def reset(self):
            pass
        def compute(self, obs):
            if self.opts.die:
                os.kill(os.getpid(), signal.SIGKILL)
            if self.opts.pause:
                time.sleep(self.opts.pause)
            x, v, ref = obs
            return np.clip([40.0 * (ref - x) - 9.0 * v + 2.0 * ref], -10, 10)

    if "ray-test" not in CONTROLLERS:
        CONTROLLERS.register("ray-test", lambda plant, opts: PD(plant.dt, opts),
                             description="test controller", options=TestOptions)

    SPEC = StudySpec(name="ray-test", plants=("ctrlbench/MassSpringDamper-v0",),
                     controllers=("ray-test",), seeds=(0,), steps=50,
                     grid={"controller.pause": (0.0, 0.4), "controller.die": (False, True)})
    '''
)


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray (2 CPUs) for the module; studies use it as it is."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "records").glob("*.json"))}


def test_local_and_ray_backends_write_identical_records(tmp_path, local_ray):
    spec = StudySpec(name="same", plants=(MSD,), controllers=("pid", "lqr"), seeds=(0, 1),
                     steps=200)
    local = run_study(spec, tmp_path / "local", workers=1)
    remote = run_study(spec, tmp_path / "ray", workers=2, backend="ray")
    assert len(remote) == 4 and all(r["status"] == "ok" for r in remote)
    assert json.dumps(remote) == json.dumps(local)  # NaN step metrics compare as text
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")  # byte for byte
    for rec in remote:  # the trajectories too
        a = (tmp_path / "local" / rec["trajectory"]).read_bytes()
        assert (tmp_path / "ray" / rec["trajectory"]).read_bytes() == a
    # a rerun on Ray skips every finished run
    again: list[str] = []
    run_study(spec, tmp_path / "ray", workers=2, backend="ray", on_done=lambda r: again.append(r))
    assert again == []


@pytest.mark.slow  # the default suite keeps only the Ray start-up of the test above
def test_ray_records_a_dead_worker_and_a_timeout_as_failures(tmp_path, local_ray):
    path = tmp_path / "spec.py"
    path.write_text(SPEC_PY)
    spec = StudySpec.from_file(path)
    t0 = time.monotonic()
    # the limit leaves a loaded machine time to start the dying runs' workers (they must die,
    # not time out) and is far below the 50 x 0.4 s of the slow run
    records = run_study(spec, tmp_path / "out", workers=2, backend="ray", preload=[path],
                        timeout_s=4.0)
    assert time.monotonic() - t0 < 15  # the 20-s run was stopped, not waited for
    by = {(r["controller_options"]["pause"], r["controller_options"]["die"]): r for r in records}
    assert by[(0.0, False)]["status"] == "ok"
    for key in ((0.0, True), (0.4, True)):
        assert by[key]["status"] == "error" and "Ray worker died" in by[key]["error"]
    assert by[(0.4, False)]["status"] == "error"
    assert "timed out" in by[(0.4, False)]["error"] and "timeout_s = 4 s" in by[(0.4, False)][
        "error"]


# -- fault injection on real `ctrlbench study --backend ray` processes (slow) ------------------
SPEC_TOML = """\
name = "ray-faults"
plants = ["ctrlbench/MassSpringDamper-v0"]
controllers = ["pid", "lqr"]
seeds = [{seeds}]
steps = 3000
"""


def _start(spec: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ctrlbench.cli", "study", str(spec), "--out", str(out),
           "--workers", "2", "--backend", "ray"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _n_records(out: Path) -> int:
    return len(list((out / "records").glob("*.json")))


def _wait_for(out: Path, proc: subprocess.Popen, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while _n_records(out) < n:
        assert proc.poll() is None, "the study ended before the fault could be injected"
        assert time.monotonic() < deadline, "no records appeared"
        time.sleep(0.05)


def _ray_workers() -> list[int]:
    """Pids of Ray worker processes running a study run (``ray::ray_run``)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if b"ray::ray_run" in (d / "cmdline").read_bytes():
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def _rerun_and_check(spec_path: Path, out: Path, n_runs: int) -> list[dict]:
    proc = _start(spec_path, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode in (0, 1), err.decode()
    recs = [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]
    ids = [r["run_id"] for r in recs]
    assert len(ids) == len(set(ids)) == n_runs  # each run recorded exactly once
    return recs


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill9_of_a_ray_worker_and_of_the_driver_then_reruns_record_each_run_once(tmp_path):
    seeds = 8
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(SPEC_TOML.format(seeds=", ".join(map(str, range(seeds)))))
    out = tmp_path / "out"
    # 1. kill -9 one Ray worker mid-study: its run is recorded failed, the study goes on
    proc = _start(spec_path, out)
    _wait_for(out, proc, 2)
    deadline = time.monotonic() + 30
    while not (workers := _ray_workers()):
        assert time.monotonic() < deadline, "no Ray worker running a run"
        time.sleep(0.05)
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err.decode()  # one failed run
    recs = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    dead = [r for r in recs if r["status"] == "error"]
    assert len(recs) == 2 * seeds and len(dead) == 1 and "Ray worker died" in dead[0]["error"]
    # 2. the rerun redoes the failed run; kill -9 the driver halfway through a fresh study
    fresh = tmp_path / "fresh"
    proc = _start(spec_path, fresh)
    _wait_for(fresh, proc, 3)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15  # a Ray started by the driver shares its fate
    while _ray_workers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _ray_workers(), "Ray workers outlived their killed driver"
    for folder in (out, fresh):
        recs = _rerun_and_check(spec_path, folder, 2 * seeds)
        assert all(r["status"] == "ok" for r in recs)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_or_sigint_to_a_ray_study_exits_cleanly_without_error_records(
        tmp_path, sig, status):
    # Ray's core worker installs a C-level SIGTERM handler in the driver that would crash it;
    # the backend puts ctrlbench's interrupt handling back after starting Ray
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(SPEC_TOML.format(seeds=", ".join(map(str, range(8)))))
    out = tmp_path / "out"
    proc = _start(spec_path, out)
    _wait_for(out, proc, 2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err.decode()[-2000:]
    assert b"finished work is kept" in err and b"bug in Ray" not in err
    recs = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert recs and all(r["status"] == "ok" for r in recs)
    deadline = time.monotonic() + 15
    while _ray_workers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _ray_workers()
    _rerun_and_check(spec_path, out, 16)
