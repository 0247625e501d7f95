"""Study records: one JSON line per finished run, read back only after it is checked.

``records/<run_id>.json`` says a run is finished. A record is trusted only when it is one JSON
object with every key, its fields hash to its run id (so it was written for exactly that run),
and, when it says ``"ok"``, its metrics are finite (step metrics may read NaN by definition) and
its trajectory loads. Anything else is *damaged*; a record whose run is not in the study's
``runs.json`` is *foreign*. Studies move both to ``quarantine/`` (with a note saying why) and
re-run the run; reports skip them; both name the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ctrlbench.io import atomic_write_bytes
from ctrlbench.runfolder import quarantine
from ctrlbench.trajectory import Trajectory, jsonable

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FOREIGN",
    "RUNS_FILE",
    "RecordScan",
    "load_records",
    "nonfinite_problem",
    "record_problem",
    "records_frame",
    "run_id_of",
    "scan_records",
    "study_run_ids",
    "trajectory_problem",
    "write_record",
]

RUNS_FILE = "runs.json"
"""The study folder's list of its run ids (written by :func:`~ctrlbench.study.run_study`)."""

FOREIGN = "belongs to another study (its run is not in this study's spec)"
"""Why a record is left out when its run is not one of the study's."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]|^\.")
_KEYS = ("run_id", "plant", "controller", "seed", "steps", "plant_options", "controller_options",
         "status")
# step metrics are NaN by definition when the reference has no step or it is never reached
_MAY_BE_NAN = (".overshoot", ".rise_time", ".settling_time")


def run_id_of(
    plant: str,
    controller: str,
    seed: int,
    steps: int | None,
    plant_options: Mapping[str, Any],
    controller_options: Mapping[str, Any],
) -> str:
    """The content id of a run: ``<Plant>__<controller>__s<seed>__<hash of all fields>``.

    It names the run's files, so characters other than letters, digits, ``.``, ``_`` and ``-`` in
    the readable part become ``_`` (a controller name never reaches outside ``records/``).
    """
    fields = {"plant": plant, "controller": controller, "seed": seed, "steps": steps,
              "plant_options": dict(plant_options), "controller_options": dict(controller_options)}
    blob = json.dumps(fields, sort_keys=True, default=str).encode()
    readable = _UNSAFE.sub("_", f"{plant.split('/')[-1]}__{controller}__s{seed}")
    return f"{readable}__{hashlib.sha1(blob).hexdigest()[:10]}"


def nonfinite_problem(traj: Trajectory, metrics: Mapping[str, Any]) -> str | None:
    """Why a finished closed loop cannot be recorded as ok, or ``None``.

    Observations, actions and rewards must be finite, and so must every metric except the step
    metrics (overshoot, rise and settling time), which read NaN when they do not apply.
    """
    for what, arr, signals in (
        ("observation", traj.observations, traj.observation_signals),
        ("action", traj.actions, traj.action_signals),
        ("reward", traj.rewards.reshape(-1, 1), ()),
    ):
        bad = ~np.isfinite(arr)
        if bad.any():
            k, j = (int(i) for i in np.argwhere(bad)[0])
            name = f" {signals[j].name!r}" if j < len(signals) else ""
            return (f"non-finite {what}{name} ({arr[k, j]}) at sample {k}: the plant diverged "
                    f"or its parameters are invalid")
    for key, value in metrics.items():
        if not key.endswith(_MAY_BE_NAN) and _is_number(value) and not math.isfinite(value):
            return f"metric {key!r} is not finite ({value})"
    return None


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _type_problem(rec: Mapping[str, Any]) -> str | None:
    types: dict[str, tuple[type, ...]] = {
        "run_id": (str,), "plant": (str,), "controller": (str,), "seed": (int,),
        "steps": (int, type(None)), "plant_options": (dict,), "controller_options": (dict,),
        "status": (str,),
    }
    for key, allowed in types.items():
        value = rec[key]
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            return f"{key} = {value!r} has the wrong type"
    return None


def record_problem(rec: Any, path: str | Path | None = None) -> str | None:
    """What is wrong with a record read back from ``path`` (``None``: nothing).

    Checks the keys and their types, that the fields hash to the run id (and the file name,
    when given), and that an ok record has finite metrics and names its trajectory.
    """
    if not isinstance(rec, dict):
        return f"not a JSON object (a JSON {type(rec).__name__})"
    missing = [k for k in _KEYS if k not in rec]
    if missing:
        return f"missing key(s) {missing}"
    problem = _type_problem(rec)
    if problem:
        return problem
    if path is not None and Path(path).stem != rec["run_id"]:
        return f"its run_id {rec['run_id']!r} does not match the file name"
    fields = {k: rec[k] for k in _KEYS[1:-1]}
    if run_id_of(**fields) != rec["run_id"]:
        return "its fields do not match its run_id (edited or damaged)"
    if rec["status"] == "error":
        return None if isinstance(rec.get("error"), str) else "error record without an error"
    if rec["status"] != "ok":
        return f"unknown status {rec['status']!r}"
    metrics, units = rec.get("metrics"), rec.get("units", {})
    if not isinstance(metrics, dict) or not all(
        isinstance(v, int | float) for v in metrics.values()
    ):
        return "ok record without numeric metrics"
    if not isinstance(units, dict) or not all(isinstance(v, str) for v in units.values()):
        return "units must map metric names to strings"
    for key, value in metrics.items():
        if not key.endswith(_MAY_BE_NAN) and not math.isfinite(value):
            return f"status ok with a non-finite metric {key} = {value}"
    trajectory = rec.get("trajectory")
    if not isinstance(trajectory, str) or not trajectory.endswith(".npz"):
        return "ok record without a trajectory (.npz)"
    return None


def trajectory_problem(rec: Mapping[str, Any], out: Path) -> tuple[Path | None, str | None]:
    """``(damaged file, problem)`` for an ok record's trajectory, which must lie in the study
    folder ``out`` and load; ``(None, None)`` when it does (the file is ``None`` when the
    trajectory is missing or lies outside)."""
    path = out / rec["trajectory"]
    try:
        path.resolve().relative_to(out.resolve())
    except ValueError:
        return None, f"its trajectory {rec['trajectory']!r} lies outside the study folder"
    if not path.is_file():
        return None, f"its trajectory {str(path)!r} is missing"
    try:
        traj = Trajectory.load(path)
        n = len(traj.actions)
        if traj.observations.shape[0] != n + 1 or traj.rewards.shape != (n,):
            raise ValueError("array shapes disagree")
    except Exception as exc:  # a damaged file can fail in many ways; all mean "not usable"
        return path, f"its trajectory {str(path)!r} does not load ({type(exc).__name__}: {exc})"
    return None, None


@dataclass
class RecordScan:
    """The outcome of :func:`scan_records`."""

    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Valid records by run id."""
    problems: list[tuple[Path, str]] = field(default_factory=list)
    """``(file, what is wrong)`` for each record left out (where it was, before quarantine)."""

    def messages(self, action: str, foreign_action: str | None = None) -> list[str]:
        """One line per problem: ``"<file>: <problem>; <action>"`` (``foreign_action`` for a
        foreign record, when given)."""
        return [f"{path}: {why}; {foreign_action if why == FOREIGN and foreign_action else action}"
                for path, why in self.problems]


def study_run_ids(out_dir: str | Path) -> set[str] | None:
    """The run ids listed in the folder's ``runs.json`` (``None`` if absent or unreadable)."""
    try:
        data = json.loads((Path(out_dir) / RUNS_FILE).read_text())
    except (OSError, ValueError):
        return None
    ids = data.get("run_ids") if isinstance(data, dict) else None
    return {i for i in ids if isinstance(i, str)} if isinstance(ids, list) else None


def scan_records(
    out_dir: str | Path,
    expected: Collection[str] | None = None,
    *,
    fix: bool = False,
    check_trajectories: bool = False,
) -> RecordScan:
    """Read and check every ``records/*.json`` of a study folder.

    Parameters
    ----------
    out_dir:
        The study folder.
    expected:
        The study's run ids; a record of any other run is foreign (``None``: accept any run).
    fix:
        Move damaged and foreign records (and a damaged trajectory) to ``quarantine/``.
    check_trajectories:
        Also load the trajectory of each ok record.
    """
    out = Path(out_dir)
    scan = RecordScan()
    rec_dir = out / "records"
    if not rec_dir.is_dir():
        return scan
    for path in sorted(rec_dir.glob("*.json")):
        rec, why, damaged = None, None, None
        try:
            text = path.read_text(encoding="utf-8")
            rec = json.loads(text) if text.strip() else None
            why = None if text.strip() else "empty file"
        except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError included
            why = f"not valid JSON ({exc})"
        why = why or record_problem(rec, path)
        if why is None and rec is not None:
            if expected is not None and rec["run_id"] not in expected:
                why = FOREIGN
            elif check_trajectories and rec["status"] == "ok":
                damaged, why = trajectory_problem(rec, out)
        if why is None and rec is not None:
            scan.records[rec["run_id"]] = rec
            continue
        scan.problems.append((path, why or "unreadable"))
        if fix:
            quarantine(path, out, why or "unreadable")
            if damaged is not None:
                quarantine(damaged, out, f"damaged trajectory of {path.name}")
                if damaged.with_suffix(".json").is_file():
                    quarantine(damaged.with_suffix(".json"), out, f"sidecar of {damaged.name}")
    return scan


def write_record(out_dir: str | Path, record: Mapping[str, Any]) -> Path:
    """Write ``records/<run_id>.json`` atomically (one JSON line)."""
    line = json.dumps(dict(record), default=jsonable, allow_nan=True) + "\n"
    return atomic_write_bytes(Path(out_dir) / "records" / f"{record['run_id']}.json",
                              line.encode())


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def load_records(
    out_dir: str | Path, *, on_warning: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """The valid run records of a study folder, sorted by run id.

    Damaged records, and records of runs not listed in the folder's ``runs.json``, are left out
    with a warning naming the file (``on_warning``, default :func:`warnings.warn`); files are not
    moved (the next ``study`` run quarantines them).
    """
    scan = scan_records(out_dir, study_run_ids(out_dir))
    for message in scan.messages("skipped"):
        (on_warning or _warn)(message)
    return [scan.records[k] for k in sorted(scan.records)]


def frame_of(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Records as a DataFrame (see :func:`records_frame`)."""
    import pandas as pd

    rows = []
    for rec in records:
        row: dict[str, Any] = {k: rec.get(k) for k in ("run_id", "plant", "controller", "seed",
                                                        "status", "error")}
        row.update({f"plant.{k}": v for k, v in rec.get("plant_options", {}).items()})
        row.update({f"controller.{k}": v for k, v in rec.get("controller_options", {}).items()})
        row.update(rec.get("metrics", {}))
        rows.append(row)
    return pd.DataFrame(rows)


def records_frame(out_dir: str | Path) -> pd.DataFrame:
    """The study's records as one pandas DataFrame: a row per run, columns ``plant``,
    ``controller``, ``seed``, ``status``, ``plant.<option>``, ``controller.<option>`` and one per
    metric (``iae``, ``omega_ref.overshoot``, ``terminated``, ...)."""
    return frame_of(load_records(out_dir))
