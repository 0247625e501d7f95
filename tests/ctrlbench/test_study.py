"""Studies: expansion, atomic records, resume, failures, SIGKILL safety, reports."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from ctrlbench.report import build_report
from ctrlbench.study import StudySpec, load_records, run_study

MSD = "ctrlbench/MassSpringDamper-v0"

# A study spec file that registers its own controllers: PD on the mass-spring-damper, and one
# that always fails. Used in-process and by the CLI subprocess.
SPEC_PY = textwrap.dedent(
    '''
    from dataclasses import dataclass
    import numpy as np
    from ctrlbench.controller import FeedbackController
    from ctrlbench.options import Options, option
    from ctrlbench.registry import CONTROLLERS
    from ctrlbench.study import StudySpec

    import os, time
    PAUSE = float(os.environ.get("CTRLBENCH_TEST_PAUSE", "0"))  # seconds per step

    class PD(FeedbackController):
        def __init__(self, dt, kp=40.0, kd=9.0):
            super().__init__(dt)
            self.kp, self.kd = kp, kd
        def reset(self):
            pass
        def compute(self, obs):
            if PAUSE:
                time.sleep(PAUSE)
            x, v, ref = obs
            return np.clip([self.kp * (ref - x) - self.kd * v + 2.0 * ref], -10, 10)

    class Broken(PD):
        def compute(self, obs):
            return np.array([np.nan])

    @dataclass(frozen=True)
    class PDOptions(Options):
        kp: float = option(40.0, "proportional gain [N/m]", ge=0)
        kd: float = option(9.0, "derivative gain [N s/m]", ge=0)

    def make_pd(plant, opts):
        return PD(plant.dt, opts.kp, opts.kd)

    def make_broken(plant, opts):
        return Broken(plant.dt)

    for name, fn in (("pd-test", make_pd), ("broken-test", make_broken)):
        if name not in CONTROLLERS:
            CONTROLLERS.register(name, fn, description="test controller", options=PDOptions)

    SPEC = StudySpec(
        name="msd-test",
        plants=("ctrlbench/MassSpringDamper-v0",),
        controllers=CONTROLLERS_UNDER_TEST,
        seeds=SEEDS,
        steps=STEPS,
        grid={"controller.kp": (20.0, 40.0)},
    )
    '''
)


def write_spec(tmp_path: Path, controllers: tuple[str, ...], seeds: tuple[int, ...],
               steps: int) -> Path:
    path = tmp_path / "spec.py"
    path.write_text(SPEC_PY.replace("CONTROLLERS_UNDER_TEST", repr(controllers))
                    .replace("SEEDS", repr(seeds)).replace("STEPS", str(steps)))
    return path


def test_spec_expands_to_the_cartesian_product():
    spec = StudySpec("s", (MSD,), ("pid", "zero"), seeds=(0, 1),
                     grid={"controller.kp": (1, 2), "plant.k": (3.0,)})
    runs = spec.runs()
    assert len(runs) == 2 * 2 * 2
    assert len({r.run_id for r in runs}) == 8
    assert runs[0].plant_options == {"k": 3.0} and runs[0].controller_options == {"kp": 1}
    assert spec.runs()[3].run_id == runs[3].run_id  # stable


def test_per_plant_controller_options():
    dc = "ctrlbench/DCSpeed-v0"
    spec = StudySpec("s", (MSD, dc), ("pid",),
                     controller_options={"pid": {"kp": 1, "kd": 2}, f"pid@{MSD}": {"kp": 5}})
    opts = {r.plant: r.controller_options for r in spec.runs()}
    assert opts == {MSD: {"kp": 5, "kd": 2}, dc: {"kp": 1, "kd": 2}}
    with pytest.raises(ValueError, match="controller_options key 'pid@nope'"):
        StudySpec("s", (MSD,), ("pid",), controller_options={"pid@nope": {}})


def test_spec_rejects_unknown_keys_and_unscoped_grid():
    with pytest.raises(KeyError, match="valid keys"):
        StudySpec.from_dict({"name": "x", "plants": [MSD], "controllers": ["a"], "seed": [1]})
    with pytest.raises(ValueError, match=r"must start with 'plant\.' or 'controller\.'"):
        StudySpec("x", (MSD,), ("pid",), grid={"kp": (1,)})


def test_toml_spec(tmp_path):
    (tmp_path / "s.toml").write_text(
        f'name = "t"\nplants = ["{MSD}"]\ncontrollers = ["pid"]\nseeds = [0, 1]\nsteps = 10\n'
        '[grid]\n"plant.k" = [1.0, 2.0]\n')
    spec = StudySpec.from_file(tmp_path / "s.toml")
    assert spec.steps == 10 and len(spec.runs()) == 4


def test_study_records_failures_resumes_and_reports(tmp_path):
    spec = StudySpec.from_file(write_spec(tmp_path, ("pd-test", "broken-test"), (0, 1), 300))
    out = tmp_path / "out"
    seen: list[str] = []
    records = run_study(spec, out, on_done=lambda r: seen.append(r["run_id"]))
    assert len(records) == len(seen) == 8
    ok = [r for r in records if r["status"] == "ok"]
    bad = [r for r in records if r["status"] == "error"]
    assert len(ok) == 4 and len(bad) == 4
    assert "non-finite action" in bad[0]["error"]
    assert all(r["metrics"]["x_ref.steady_state_error"] < 0.05 for r in ok)
    # rerun without retrying failures: nothing new runs
    again: list[str] = []
    run_study(spec, out, retry_failed=False, on_done=lambda r: again.append(r["run_id"]))
    assert again == []
    # a rerun skips the finished runs and redoes only what is missing or (by default) failed:
    # the ok records' files are not rewritten, the executed runs are exactly the others
    files = {f.name: (f.stat().st_mtime_ns, f.read_bytes()) for f in (out / "records").iterdir()}
    assert len(files) == 8
    ok_ids = sorted(r["run_id"] for r in ok)
    bad_ids = sorted(r["run_id"] for r in bad)
    missing = ok_ids[:2]
    for f in (out / "records").iterdir():
        if any(rid in f.name for rid in missing):
            f.unlink()
    plans: list[tuple[int, int]] = []
    redone: list[str] = []
    records = run_study(spec, out, on_plan=lambda n, d: plans.append((n, d)),
                        on_done=lambda r: redone.append(r["run_id"]))
    assert plans == [(8, 2)] and sorted(redone) == sorted(missing + bad_ids)
    assert [r["status"] for r in records].count("ok") == 4
    for f in (out / "records").iterdir():
        if any(rid in f.name for rid in ok_ids[2:]):
            assert (f.stat().st_mtime_ns, f.read_bytes()) == files[f.name]
    # report from the records alone
    report = build_report(out).read_text()
    assert "### ctrlbench/MassSpringDamper-v0" in report and "| pd-test |" in report
    assert report.count("broken-test") >= 4 and "## Failed runs" in report
    assert list(out.glob("fig_*.png"))


def test_study_in_a_process_pool_records_worker_errors(tmp_path):
    # bandwidth 0.1 rad/s passes option validation but no PID can place it: the design fails
    # inside the worker, which must become an error record while the other runs go on
    spec = StudySpec("pool", (MSD,), ("pid",), seeds=(0, 1), steps=20,
                     grid={"controller.bandwidth": (4.0, 0.1)})
    records = run_study(spec, tmp_path, workers=2)
    status = sorted((r["controller_options"]["bandwidth"], r["status"]) for r in records)
    assert status == [(0.1, "error"), (0.1, "error"), (4.0, "ok"), (4.0, "ok")]
    assert "below what a PID can place" in next(
        r for r in records if r["status"] == "error")["error"]


def test_a_run_past_its_timeout_is_recorded_failed_and_the_study_goes_on(tmp_path, monkeypatch):
    # the pd-test controller sleeps 20 ms a step when asked (read by the worker at start-up):
    # 300 steps take 6 s; the 0.6 s limit stops each run and records why
    monkeypatch.setenv("CTRLBENCH_TEST_PAUSE", "0.02")
    spec = StudySpec.from_file(write_spec(tmp_path, ("pd-test",), (0,), 300))
    spec = dataclasses.replace(spec, grid={}, timeout_s=0.6)
    t0 = time.monotonic()
    records = run_study(spec, tmp_path / "out", workers=1, preload=[tmp_path / "spec.py"])
    assert time.monotonic() - t0 < 5
    assert len(records) == 1 and records[0]["status"] == "error"
    assert records[0]["error"].startswith("timed out") and "timeout_s = 0.6 s" in records[0][
        "error"]
    assert load_records(tmp_path / "out") == records  # a valid record, read back


def test_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from ctrlbench.cli import main
    from ctrlbench.study_ray import MissingExtraError

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when not installed
    spec = StudySpec("x", (MSD,), ("pid",), steps=5)
    with pytest.raises(MissingExtraError, match=r"pip install 'ctrlbench\[ray\]'"):
        run_study(spec, tmp_path / "never", backend="ray")
    assert not (tmp_path / "never").exists()
    path = tmp_path / "s.toml"
    path.write_text('name = "x"\nplants = ["ctrlbench/MassSpringDamper-v0"]\n'
                    'controllers = ["pid"]\n')
    assert main(["study", str(path), "--backend", "ray", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "the Ray backend needs ray" in err and "ray==2.60.0" in err and "Traceback" not in err


def test_unknown_names_and_options_fail_before_any_run(tmp_path):
    for spec, match in [
        (StudySpec("x", (MSD,), ("pid-missing",)), "valid controller names"),
        (StudySpec("x", ("ctrlbench/Nope-v0",), ("pid",)), "valid plant names"),
        (StudySpec("x", (MSD,), ("pid",), grid={"controller.gain": (1,)}), "valid options"),
    ]:
        with pytest.raises((KeyError, TypeError), match=match):
            run_study(spec, tmp_path / "never")
        assert not (tmp_path / "never").exists()


@pytest.mark.slow  # the default suite: driver kill -9 in tests/ctrlbench/test_faults.py
def test_sigkill_halfway_then_rerun_records_every_run_once(tmp_path):
    spec_path = write_spec(tmp_path, ("pd-test",), tuple(range(12)), 1000)
    spec = StudySpec.from_file(spec_path)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "ctrlbench.cli", "study", str(spec_path), "--out", str(out)]
    # the first attempt is slowed down (>= 0.3 s a run, 24 runs) so the kill lands mid-study
    slow = {**os.environ, "CTRLBENCH_TEST_PAUSE": "3e-4"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=slow)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "records").glob("*.json"))) < 4:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(load_records(out))
    assert 4 <= n_before < 24, "the study should have been killed halfway"
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    records = load_records(out)
    ids = [r["run_id"] for r in records]
    assert sorted(ids) == sorted(r.run_id for r in spec.runs())  # each exactly once
    assert all(r["status"] == "ok" for r in records)
    for r in records:  # every record is one complete JSON line and its trajectory loads
        path = out / "records" / f"{r['run_id']}.json"
        assert path.read_text().count("\n") == 1
        with np.load(out / r["trajectory"]) as z:
            assert z["actions"].shape == (1000, 1)
    json.loads((out / "spec.json").read_text())
