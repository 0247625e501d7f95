"""Pinned behaviour of ctrlbench/study.py's Ray branch (mutation survivors): what
``run_study(backend="ray")`` hands the Ray backend (the runs, the folder, the preload files, the
address, the spec's resources and the timeout) and what it records of the session.

The studies run in a fresh Python process: Ray started inside a forked process (mutmut runs each
mutant's tests in one) crashes it, and a fresh process imports the same ctrlbench (mutated or
not) through ``PYTHONPATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the Ray backend needs the ray extra (ctrlbench[ray])")

import ctrlbench
from ctrlbench.study import StudySpec, run_study

# the driver: a study at an address Ray refuses at once (no port; no Ray running yet), then two
# studies on a local Ray with 2 CPUs and no GPU; prints what they returned as one JSON line
DRIVER = """
import json, os, sys
from pathlib import Path
import ray
from ctrlbench.study import StudySpec, run_study
from ctrlbench.study_pool import StudyWorkerError

tmp = Path(sys.argv[1])


def small(seeds, **kw):
    return StudySpec("pinned-ray", ("ctrlbench/MassSpringDamper-v0",), ("pid",), seeds=seeds,
                     steps=3, **kw)


result = {"driver_pid": os.getpid()}
try:
    run_study(small((0,)), tmp / "bad", backend="ray", address="no-port-here")
    result["bad_address"] = None
except StudyWorkerError as exc:
    result["bad_address"] = str(exc)
result["ray_after_bad_address"] = ray.is_initialized()
ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
try:
    result["ok"] = run_study(small((0, 1), resources={"num_cpus": 2.0}), tmp / "out", workers=2,
                             backend="ray", preload=[str(tmp / "pre.py")])
    result["timed"] = run_study(small((3,)), tmp / "timed", backend="ray",
                                preload=[str(tmp / "sleepy.py")], timeout_s=0.5)
finally:
    ray.shutdown()
print(json.dumps(result))
"""

# the preload file of the first local study: run by each Ray worker before its first run, it
# writes down the worker's pid and the resources Ray gave the task running it
PRELOAD = """
import json, os, pathlib
import ray
pathlib.Path({log!r}).joinpath(f"{{os.getpid()}}.json").write_text(
    json.dumps(ray.get_runtime_context().get_assigned_resources()))
"""


@pytest.mark.slow  # a new Python process that starts Ray (~7 s); selected in mutation runs
def test_ray_studies_get_the_address_folder_preload_spec_resources_and_timeout(tmp_path):
    # in this process: with backend="ray" an address is allowed, the timeout check refuses
    spec = StudySpec("pinned-ray", ("ctrlbench/MassSpringDamper-v0",), ("pid",), seeds=(0,),
                     steps=3)
    with pytest.raises(ValueError) as info:
        run_study(spec, tmp_path / "refused", backend="ray", address="auto", timeout_s=-1.0)
    assert str(info.value) == ("timeout_s = -1.0 is out of range; valid: a finite number of "
                               "seconds > 0")
    assert not (tmp_path / "refused").exists()

    log = tmp_path / "log"
    log.mkdir()
    (tmp_path / "pre.py").write_text(PRELOAD.format(log=str(log)))
    (tmp_path / "sleepy.py").write_text("import time\ntime.sleep(2.0)\n")
    root = str(Path(ctrlbench.__file__).resolve().parents[1])
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])

    # the address reaches Ray, which refuses it; nothing ran, the session says "ray"
    assert result["bad_address"].startswith(
        "cannot start or reach the Ray cluster at 'no-port-here': ")
    assert result["ray_after_bad_address"] is False
    bad = tmp_path / "bad"
    assert not (bad / "records").exists()
    (session,) = json.loads((bad / "provenance.json").read_text())["sessions"]
    assert session["backend"] == "ray" and session["workers"] == 1

    # both runs, recorded in the study folder, each task holding both CPUs of the spec's
    # resources (the default is 1), the preload file run in Ray workers
    records = result["ok"]
    assert [(r["seed"], r["status"]) for r in records] == [(0, "ok"), (1, "ok")]
    out = tmp_path / "out"
    for rec in records:
        on_disk = json.loads((out / "records" / f"{rec['run_id']}.json").read_text())
        assert on_disk["status"] == "ok" and on_disk["seed"] == rec["seed"]
        assert (out / rec["trajectory"]).is_file()
    preloads = {p.stem: json.loads(p.read_text()) for p in log.glob("*.json")}
    assert preloads and all(v == {"CPU": 2.0} for v in preloads.values())
    assert str(result["driver_pid"]) not in preloads

    # the timeout argument reaches Ray: a run whose preload sleeps 2 s is stopped at 0.5 s
    (timed,) = result["timed"]
    assert timed["status"] == "error"
    assert "timed out" in timed["error"] and "timeout_s = 0.5 s" in timed["error"]
