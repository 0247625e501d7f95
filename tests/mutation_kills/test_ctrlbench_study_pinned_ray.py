"""Pinned behaviour of ctrlbench/study.py's Ray branch (mutation survivors): what
``run_study(backend="ray")`` hands the Ray backend (the runs, the folder, the preload files, the
address, the spec's resources and the timeout) and what it records of the session."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason="the Ray backend needs the ray extra (ctrlbench[ray])")

from ctrlbench.study import StudySpec, run_study  # noqa: E402
from ctrlbench.study_pool import StudyWorkerError  # noqa: E402

MSD = "ctrlbench/MassSpringDamper-v0"


def small(seeds: tuple[int, ...] = (0,), **kw: Any) -> StudySpec:
    return StudySpec("pinned-ray", (MSD,), ("pid",), seeds=seeds, steps=3, **kw)


def test_an_address_ray_cannot_use_fails_the_study_and_the_session_says_ray(tmp_path):
    # no Ray is running in this process, so the study connects to the address it was given;
    # Ray refuses one without a port at once (no network wait)
    assert not ray.is_initialized()
    out = tmp_path / "out"
    with pytest.raises(StudyWorkerError) as info:
        run_study(small(), out, backend="ray", address="no-port-here")
    assert str(info.value).startswith(
        "cannot start or reach the Ray cluster at 'no-port-here': ")
    assert not ray.is_initialized()
    assert not (out / "records").exists()  # nothing ran
    (session,) = json.loads((out / "provenance.json").read_text())["sessions"]
    assert session["backend"] == "ray" and session["workers"] == 1


# the preload file of the study below: run by each Ray worker before its first run, it writes
# down the worker's pid and the resources Ray gave the task running it
PRELOAD = """
import json, os, pathlib
import ray
pathlib.Path({log!r}).joinpath(f"{{os.getpid()}}.json").write_text(
    json.dumps(ray.get_runtime_context().get_assigned_resources()))
"""


@pytest.fixture
def two_cpu_ray() -> Iterator[Any]:
    """A local Ray with 2 CPUs and no GPU, shut down after the test (studies use it as is)."""
    ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.slow  # starts Ray (~3 s); selected in this module's mutation runs
def test_ray_runs_get_the_folder_the_preload_the_spec_resources_and_the_timeout(
        tmp_path, two_cpu_ray):
    log = tmp_path / "log"
    log.mkdir()
    script = tmp_path / "pre.py"
    script.write_text(PRELOAD.format(log=str(log)))
    # each run declares both CPUs of the Ray (the default is 1): they run one after the other
    spec = small(seeds=(0, 1), resources={"num_cpus": 2.0})
    out = tmp_path / "out"
    records = run_study(spec, out, workers=2, backend="ray", preload=[script])
    assert [(r["seed"], r["status"]) for r in records] == [(0, "ok"), (1, "ok")]
    for rec in records:  # written into the study folder
        on_disk = json.loads((out / "records" / f"{rec['run_id']}.json").read_text())
        assert on_disk["status"] == "ok" and on_disk["seed"] == rec["seed"]
        assert (out / rec["trajectory"]).is_file()
    preloads = [json.loads(p.read_text()) for p in sorted(log.glob("*.json"))]
    assert preloads and all(p == {"CPU": 2.0} for p in preloads)
    assert all(p.stem != str(os.getpid()) for p in log.glob("*.json"))  # in Ray workers
    # the timeout argument reaches Ray: a run whose preload sleeps 2 s is stopped at 0.5 s
    sleepy = tmp_path / "sleepy.py"
    sleepy.write_text("import time\ntime.sleep(2.0)\n")
    timed = run_study(small(seeds=(3,)), tmp_path / "timed", backend="ray", preload=[sleepy],
                      timeout_s=0.5)
    assert [r["status"] for r in timed] == ["error"]
    assert "timed out" in timed[0]["error"] and "timeout_s = 0.5 s" in timed[0]["error"]

