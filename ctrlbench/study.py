"""Studies: a frozen spec (plants x controllers x seeds x parameter grid) expanded into runs.

Each run writes its trajectory, then its record (``records/<run_id>.json``, one JSON line)
atomically; a valid record means the run is finished, so a rerun skips it and a study killed at
any point loses at most the runs in flight. A failing run is recorded with its error and the
study goes on; a run whose signals or metrics are not finite is a failure, never "ok".

The study folder belongs to one study: :func:`run_study` holds its lock for the whole study (a
second study on it is refused, naming the holder's pid), refuses a folder whose ``spec.json``
is another spec's (``overwrite=True`` moves the old study aside), and quarantines damaged or
foreign records before deciding what to run (see :mod:`ctrlbench.records`). SIGINT / SIGTERM
stop it without recording anything false; workers are managed by :mod:`ctrlbench.study_pool`
(the local backend) or by Ray (:mod:`ctrlbench.study_ray`, ``backend="ray"``): both run
:func:`execute_run`, so the records are the same files written the same way; only scheduling
differs. A run past the spec's ``timeout_s`` is stopped and recorded as failed on both.
Each session (a start or a resume) appends its provenance (commit, versions, threads, hardware,
command; :mod:`ctrlbench.provenance`) to ``provenance.json``.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Generator, Sequence
from contextlib import closing
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ctrlbench.interrupt import pending_signal, raise_if_interrupted
from ctrlbench.io import atomic_write_bytes
from ctrlbench.provenance import PROVENANCE_FILE, provenance, read_sessions
from ctrlbench.records import (
    RUNS_FILE,
    load_records,
    nonfinite_problem,
    records_frame,
    scan_records,
    write_record,
)
from ctrlbench.runfolder import RunFolderError, claim_folder, lock_folder, quarantine
from ctrlbench.study_spec import EXECUTION_FIELDS, RunSpec, StudySpec, check_timeout
from ctrlbench.trajectory import jsonable

__all__ = [
    "BACKENDS",
    "MAX_WORKERS",
    "RunSpec",
    "StudySpec",
    "execute_run",
    "load_records",
    "records_frame",
    "run_study",
]

MAX_WORKERS = 256
"""The largest process pool a study starts."""

BACKENDS = ("local", "ray")
"""Where a study's runs execute: a local process pool, or Ray tasks (local Ray or a cluster)."""

# what makes a folder "hold a study" for --overwrite
_STUDY_FILES = ("spec.json", RUNS_FILE, "records", "trajectories", "report.md", "records.csv",
                "quarantine", PROVENANCE_FILE)


def execute_run(run: RunSpec, out_dir: str | Path) -> dict[str, Any]:
    """Run one closed loop and write its trajectory and record; errors become records.

    A run whose observations, actions, rewards or (non-step) metrics are not finite is recorded
    as an error. ``KeyboardInterrupt`` (SIGINT / SIGTERM inside
    :func:`~ctrlbench.interrupt.handle_signals`) is never recorded: it propagates, also when a
    solver swallowed it and raised something else instead.
    """
    from ctrlbench.metrics import summary, units
    from ctrlbench.registry import make_controller, make_plant
    from ctrlbench.simulate import simulate

    out = Path(out_dir)
    record: dict[str, Any] = {"run_id": run.run_id, **asdict(run)}
    plant = None
    try:
        plant = make_plant(run.plant, **run.plant_options)
        ctrl = make_controller(run.controller, plant, **run.controller_options)
        traj = simulate(
            plant,
            ctrl,
            steps=run.steps,
            seed=run.seed,
            meta={"plant": run.plant, "controller": run.controller},
        )
        raise_if_interrupted()  # a signal a solver swallowed: the run did not finish
        metrics = summary(traj)
        problem = nonfinite_problem(traj, metrics)
        if problem:
            record.update(status="error", error=f"non-finite result: {problem}")
        else:
            traj_path = traj.save(out / "trajectories" / run.run_id)
            record.update(status="ok", metrics=metrics, units=units(traj),
                          trajectory=str(traj_path.relative_to(out)))
    except Exception as exc:
        if pending_signal() is not None:  # the error is the aftermath of an interrupt
            raise_if_interrupted()
        record.update(
            status="error",
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(limit=5),
        )
    finally:
        if plant is not None:
            try:
                plant.close()
            except Exception:  # closing must not turn a result into a failure
                pass
    raise_if_interrupted()
    write_record(out, record)
    return record


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, default=jsonable)


def _spec_json(spec: StudySpec) -> Any:
    return json.loads(json.dumps(asdict(spec), default=jsonable))


def _what(spec: Any) -> Any:
    """A spec's JSON without the execution fields (what the runs compute)."""
    return {k: v for k, v in spec.items() if k not in EXECUTION_FIELDS}


def _claim(out: Path, spec: StudySpec, overwrite: bool, warn: Callable[[str], None]) -> None:
    """Check that ``out`` is free or holds this very spec; move an old study aside if asked."""
    if overwrite:
        aside = claim_folder(out, resume=False, overwrite=True, markers=_STUDY_FILES)
        if aside is not None:
            warn(f"moved the previous study in {str(out)!r} to {str(aside)!r}")
        return
    path = out / "spec.json"
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(old, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        where = quarantine(path, out, f"unreadable spec.json ({exc})")
        warn(f"{path}: unreadable ({exc}); moved to {where}, records are checked against the "
             f"spec given now")
        return
    old, new = _what(old), _what(_spec_json(spec))
    if _canonical(old) == _canonical(new):
        return
    fields = sorted(k for k in set(old) | set(new) if _canonical(old.get(k)) !=
                    _canonical(new.get(k)))
    raise RunFolderError(
        f"{str(out)!r} holds another study ({old.get('name')!r}; the specs differ in "
        f"{', '.join(fields)}): rerun with the same spec to resume it, pass --overwrite to move "
        f"it aside to {out.name}.old-<time>, or choose another folder"
    )


def _tidy(out: Path, warn: Callable[[str], None]) -> None:
    """Remove temporary files of atomic writes a killed process left behind (we hold the
    lock); quarantine a file where ``records/`` or ``trajectories/`` belongs."""
    for sub in ("records", "trajectories"):
        folder = out / sub
        if folder.exists() and not folder.is_dir():
            where = quarantine(folder, out, f"a file where the folder {sub}/ belongs")
            warn(f"{folder}: a file where the folder {sub}/ belongs; moved to {where}")
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def _record_session(out: Path, workers: int, warn: Callable[[str], None], backend: str) -> None:
    """Append this session's provenance to ``provenance.json`` (we hold the lock); a damaged
    file is quarantined, naming it, and a new one started."""
    path = out / PROVENANCE_FILE
    try:
        sessions = read_sessions(path)
    except ValueError as exc:
        where = quarantine(path, out, str(exc))
        warn(f"{path}: {exc}; moved to {where}, the earlier sessions' provenance is there")
        sessions = []
    sessions.append({**provenance(), "workers": workers, "backend": backend})
    atomic_write_bytes(path, json.dumps({"sessions": sessions}, indent=1).encode())


def _warn_default(message: str) -> None:
    import warnings

    warnings.warn(message, RuntimeWarning, stacklevel=3)


def run_study(
    spec: StudySpec,
    out_dir: str | Path,
    *,
    workers: int = 1,
    retry_failed: bool = True,
    overwrite: bool = False,
    preload: Sequence[str | Path] = (),
    on_plan: Callable[[int, int], None] | None = None,
    on_done: Callable[[dict[str, Any]], None] | None = None,
    on_warning: Callable[[str], None] | None = None,
    backend: str = "local",
    address: str | None = None,
    timeout_s: float | None = None,
) -> list[dict[str, Any]]:
    """Execute the runs of ``spec`` that have no valid record yet; return the study's records.

    Raises before writing anything when a plant, controller or option is unknown
    (:meth:`StudySpec.validate`), and :class:`~ctrlbench.runfolder.RunFolderError` when the
    folder is a file, not writable, in use by another study or holds another spec's study.

    Parameters
    ----------
    spec:
        The study.
    out_dir:
        Folder for ``spec.json``, ``runs.json``, ``provenance.json``, ``records/`` and
        ``trajectories/``.
    workers:
        Process-pool size (1 to :data:`MAX_WORKERS`); 1 runs in this process (in one worker
        process when a timeout applies). With Ray: the most runs in flight at once (and the
        CPUs of a local Ray started here).
    retry_failed:
        Re-run runs whose record says ``"error"``.
    overwrite:
        Move a previous study in ``out_dir`` aside to ``<out_dir>.old-<time>`` and start afresh.
    preload:
        Python files each worker runs before its first run (a ``.py`` spec that registers its
        own controllers).
    on_plan:
        Called once with ``(number of runs, number already done)`` before any run starts.
    on_done:
        Called with each new record (progress reporting).
    on_warning:
        Called with each warning (a quarantined record, a folder moved aside); default
        :func:`warnings.warn`.
    backend:
        ``"local"`` (process pool) or ``"ray"`` (each run a Ray task with the spec's
        ``resources``; needs the ``ray`` extra).
    address:
        Ray cluster address (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); ``None``
        starts a local Ray for the study. Only with ``backend="ray"``.
    timeout_s:
        Wall-clock limit of one run in seconds; overrides the spec's ``timeout_s``.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or not (
        1 <= workers <= MAX_WORKERS
    ):
        raise ValueError(f"workers must be an integer in [1, {MAX_WORKERS}], got {workers!r}")
    if backend not in BACKENDS:
        raise ValueError(f"unknown study backend {backend!r}; valid backends: {list(BACKENDS)}")
    if address is not None and backend != "ray":
        raise ValueError(f"a Ray address ({address!r}) needs backend='ray', got {backend!r}")
    limit = check_timeout(timeout_s, "timeout_s") if timeout_s is not None else spec.timeout_s
    warn = on_warning or _warn_default
    if backend == "ray":
        from ctrlbench.study_ray import import_ray

        import_ray()  # not installed: say how to install it before touching the folder
    runs = spec.validate()
    ids = {r.run_id for r in runs}
    out = Path(out_dir)
    with lock_folder(out, "study"):
        _claim(out, spec, overwrite, warn)
        _tidy(out, warn)
        atomic_write_bytes(out / "spec.json",
                           json.dumps(asdict(spec), indent=1, default=jsonable).encode())
        atomic_write_bytes(out / RUNS_FILE,
                           json.dumps({"run_ids": sorted(ids)}, indent=1).encode())
        _record_session(out, workers, warn, backend)
        scan = scan_records(out, ids, fix=True, check_trajectories=True)
        for message in scan.messages("moved to quarantine/, the run will be redone",
                                     "moved to quarantine/"):
            warn(message)
        done = scan.records
        todo = [r for r in runs if r.run_id not in done
                or (retry_failed and done[r.run_id]["status"] != "ok")]
        if on_plan is not None:
            on_plan(len(runs), len(runs) - len(todo))
        preloads = [str(Path(p).resolve()) for p in preload]
        if backend == "ray":
            from ctrlbench.study_ray import run_ray

            execution = run_ray(todo, out, workers, preloads, address=address,
                                resources=dict(spec.resources), timeout_s=limit)
        else:
            execution = _execute(todo, out, workers, preloads, limit)
        with closing(execution) as records:
            for record in records:
                done[record["run_id"]] = record
                if on_done is not None:
                    on_done(record)
    return [done[k] for k in sorted(done)]


def _execute(
    todo: list[RunSpec], out: Path, workers: int, preload: list[str], timeout_s: float | None
) -> Generator[dict[str, Any], None, None]:
    if (workers <= 1 or len(todo) <= 1) and timeout_s is None:
        for run in todo:
            raise_if_interrupted()
            yield execute_run(run, out)
        return
    from ctrlbench.study_pool import run_pool

    with closing(run_pool(todo, out, max(1, min(workers, len(todo))), preload, timeout_s)) \
            as records:
        yield from records
