"""Study reports built from the records alone: a markdown table of metrics and figures.

Table cells read ``mean ± std`` over the seeds of a row (the sample standard deviation, ``ddof =
1``; a single seed shows its value alone). Figures: one response figure per (plant, plant
options), and, where a row has several seeds, one figure per plant of each metric's distribution
across seeds (a box per row, every seed a dot).

Only valid records of the folder's own study are used (:mod:`ctrlbench.records`); damaged or
foreign records and trajectories that do not load are left out with a warning naming the file.
The report ends with the provenance of each session that ran the study (``provenance.json``).
"""

from __future__ import annotations

import json
import math
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ctrlbench.io import atomic_write_bytes
from ctrlbench.provenance import PROVENANCE_FILE, format_provenance, read_sessions
from ctrlbench.records import (
    FOREIGN,
    frame_of,
    scan_records,
    study_run_ids,
    trajectory_problem,
)
from ctrlbench.runfolder import RunFolderError, ensure_writable
from ctrlbench.trajectory import Trajectory

__all__ = ["DEFAULT_COLUMNS", "build_report"]

DEFAULT_COLUMNS = (
    "iae",
    "ise",
    "control_effort",
    "total_variation",
    "constraint_violations",
    "return",
)
_STEP_METRICS = ("overshoot", "rise_time", "settling_time", "steady_state_error")


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.4g}"
    return str(x)


def _group_key(rec: dict[str, Any]) -> tuple[str, str, str]:
    opts = {
        **{f"plant.{k}": v for k, v in rec.get("plant_options", {}).items()},
        **{f"controller.{k}": v for k, v in rec.get("controller_options", {}).items()},
    }
    return rec["plant"], rec["controller"], json.dumps(opts, sort_keys=True) if opts else ""


def _columns(records: list[dict[str, Any]]) -> list[str]:
    cols = [c for c in DEFAULT_COLUMNS if any(c in r.get("metrics", {}) for r in records)]
    refs = sorted(
        {k.split(".")[0] for r in records for k in r.get("metrics", {}) if k.endswith(".overshoot")}
    )
    cols += [f"{ref}.{m}" for ref in refs for m in _STEP_METRICS]
    return cols


def _header(col: str, records: list[dict[str, Any]]) -> str:
    """``"iae [A*s]"``: the column with the unit its records give (none when they disagree)."""
    found = {r.get("units", {}).get(col) for r in records if "units" in r}
    found.discard(None)
    unit = found.pop() if len(found) == 1 else ""
    return f"{col} [{unit}]" if unit and unit != "1" else col


def _cell(vals: np.ndarray) -> str:
    """``"mean ± std"`` over the finite values (NaN seeds skipped), the value alone for one."""
    vals = vals[~np.isnan(vals)]
    if vals.size == 0:
        return "nan"
    if vals.size == 1:
        return _fmt(float(vals[0]))
    return f"{_fmt(float(np.mean(vals)))} ± {_fmt(float(np.std(vals, ddof=1)))}"


def _episode_cell(recs: list[dict[str, Any]]) -> str:
    """``"full"`` or ``"TERMINATED 2/3 (first at 0.012 s)"``: early ends are never averaged
    away."""
    ended = [r for r in recs if r["metrics"].get("terminated")]
    if not ended:
        return "full"
    first = min(float(r["metrics"].get("duration", float("nan"))) for r in ended)
    return f"**TERMINATED {len(ended)}/{len(recs)}** (first at {first:.4g} s)"


def _table(records: list[dict[str, Any]]) -> list[str]:
    """One table per plant: a row per (controller, options), metrics averaged over seeds."""
    ok = [r for r in records if r.get("status") == "ok"]
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        groups[_group_key(r)].append(r)
    lines: list[str] = []
    for plant in sorted({r["plant"] for r in ok}):
        cols = _columns([r for r in ok if r["plant"] == plant])
        lines += [
            "",
            f"### {plant}",
            "",
            "| controller | options | seeds | episode | "
            + " | ".join(_header(c, [r for r in ok if r["plant"] == plant]) for c in cols) + " |",
            "|" + "---|" * (4 + len(cols)),
        ]
        for (p, ctrl, opts), recs in sorted(groups.items()):
            if p != plant:
                continue
            cells = [_cell(np.array([float(r["metrics"].get(c, np.nan)) for r in recs]))
                     for c in cols]
            cell = (opts or "-").replace("|", "\\|")
            lines.append(f"| {ctrl} | {cell} | {len(recs)} | {_episode_cell(recs)} | "
                         + " | ".join(cells) + " |")
    return lines


def _literal(text: str) -> str:
    """Text matplotlib draws as written (a ``$`` would start mathtext)."""
    return text.replace("$", r"\$")


def _damaged_trajectories(out: Path, records: list[dict[str, Any]],
                          warn: Callable[[str], None]) -> set[str]:
    """Run ids of ok records whose trajectory is missing or does not load (each named)."""
    bad = set()
    for rec in records:
        if rec["status"] == "ok":
            _, problem = trajectory_problem(rec, out)
            if problem:
                warn(f"{rec['run_id']}: {problem}; left out of the figures (the next study run "
                     f"redoes the run)")
                bad.add(rec["run_id"])
    return bad


def _figures(out: Path, records: list[dict[str, Any]], damaged: set[str]) -> list[str]:
    """One figure per (plant, plant options): every reference response of each controller.

    Each controller is drawn from its lowest-seed run whose trajectory loads (not in
    ``damaged``); references come from the first one.
    """
    from matplotlib.figure import Figure

    lines = []
    cases: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list))
    for r in sorted((r for r in records if r.get("status") == "ok"), key=lambda r: r["seed"]):
        key = (r["plant"], json.dumps(r.get("plant_options", {}), sort_keys=True))
        cases[key][r["controller"]].append(r)
    for i, ((plant, opts), by_ctrl) in enumerate(sorted(cases.items())):
        trajs: dict[str, Trajectory] = {}
        recs: dict[str, dict[str, Any]] = {}
        for ctrl, candidates in sorted(by_ctrl.items()):
            usable = [r for r in candidates if r["run_id"] not in damaged]
            if usable:
                trajs[ctrl], recs[ctrl] = Trajectory.load(out / usable[0]["trajectory"]), usable[0]
        if not trajs:
            continue
        pairs = next(iter(trajs.values())).tracking_pairs
        if not pairs:
            continue
        fig = Figure(figsize=(8, 2.4 * len(pairs)), layout="constrained")
        axes = fig.subplots(len(pairs), 1, sharex=True, squeeze=False)[:, 0]
        first = next(iter(trajs.values()))
        units = {s.name: s.unit for s in first.observation_signals}
        for ax, (ref, tracked) in zip(axes, pairs):
            ax.plot(first.time, first.signal(ref), "k--", lw=1, label=_literal(ref))
            for ctrl, traj in trajs.items():
                ax.plot(traj.time, traj.signal(tracked), lw=1, label=_literal(ctrl))
            ax.set_ylabel(_literal(f"{tracked} [{units.get(tracked, '')}]"))
            ax.legend(fontsize="small", loc="best")
        axes[-1].set_xlabel("time [s]")
        seed = min(r["seed"] for r in recs.values())
        fig.suptitle(_literal(f"{plant} {opts if opts != '{}' else ''} (seed {seed})"))
        name = f"fig_{i:02d}_{plant.replace('/', '_')}.png"
        fig.savefig(out / name, dpi=100)
        lines.append(f"![{plant} {opts}]({name})")
    return lines


_DIST_METRICS = 4  # metric panels per distribution figure


def _distributions(out: Path, records: list[dict[str, Any]]) -> list[str]:
    """Per plant: each metric's values across seeds, a box and the dots of every seed per
    (controller, options) row; only for plants where some row has two seeds or more."""
    from matplotlib.figure import Figure

    ok = [r for r in records if r.get("status") == "ok"]
    lines = []
    for i, plant in enumerate(sorted({r["plant"] for r in ok})):
        mine = [r for r in ok if r["plant"] == plant]
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in mine:
            groups[_group_key(r)].append(r)
        if max(len(g) for g in groups.values()) < 2:
            continue
        cols = [c for c in _columns(mine) if "." not in c][:_DIST_METRICS]
        if not cols:
            continue
        keys = sorted(groups)
        labels = [_literal(ctrl + (f"\n{opts}" if opts else "")) for _, ctrl, opts in keys]
        fig = Figure(figsize=(max(5.0, 1.2 * len(keys) + 2), 2.6 * len(cols)),
                     layout="constrained")
        axes = fig.subplots(len(cols), 1, sharex=True, squeeze=False)[:, 0]
        for ax, col in zip(axes, cols):
            data = [np.array([float(r["metrics"].get(col, np.nan)) for r in groups[k]])
                    for k in keys]
            data = [d[np.isfinite(d)] for d in data]
            pos = [j for j, d in enumerate(data) if d.size]
            ax.boxplot([data[j] for j in pos], positions=pos, widths=0.5, showfliers=False)
            for j in pos:
                ax.plot(np.full(data[j].size, j) + np.linspace(-0.12, 0.12, data[j].size),
                        data[j], "o", ms=3, alpha=0.7)
            ax.set_ylabel(_literal(_header(col, mine)))
        axes[-1].set_xticks(range(len(keys)), labels, fontsize="small")
        fig.suptitle(_literal(f"{plant}: distribution across seeds"))
        name = f"dist_{i:02d}_{plant.replace('/', '_')}.png"
        fig.savefig(out / name, dpi=100)
        lines.append(f"![{plant} across seeds]({name})")
    return lines


def _study_records(out: Path, warn: Callable[[str], None]) -> list[dict[str, Any]]:
    """The folder's valid records of its own study; clear errors when there are none."""
    if not out.exists():
        raise FileNotFoundError(f"study folder {str(out)!r} does not exist")
    if not out.is_dir():
        raise RunFolderError(f"{str(out)!r} is a file, not a study folder")
    if not (out / "records").is_dir():
        raise FileNotFoundError(f"{str(out)!r} holds no study (no records/ folder); run "
                                f"`ctrlbench study <spec> --out {out}` first")
    expected = study_run_ids(out)
    scan = scan_records(out, expected)
    spec = _spec_json(out)
    if expected is None and spec:  # no runs.json (an older folder): judge by the spec's fields
        for run_id, rec in list(scan.records.items()):
            if not _in_spec(rec, spec):
                del scan.records[run_id]
                scan.problems.append((out / "records" / f"{run_id}.json", FOREIGN))
    for message in scan.messages("left out (the next study run quarantines and redoes it)",
                                 "left out"):
        warn(message)
    if not scan.records:
        skipped = f" ({len(scan.problems)} unusable file(s) left out)" if scan.problems else ""
        raise FileNotFoundError(f"no valid run records under {str(out / 'records')!r}{skipped}")
    return [scan.records[k] for k in sorted(scan.records)]


def _spec_json(out: Path) -> dict[str, Any]:
    """The folder's ``spec.json`` (``{}`` when missing or unreadable)."""
    try:
        spec = json.loads((out / "spec.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return spec if isinstance(spec, dict) else {}


def _in_spec(rec: dict[str, Any], spec: dict[str, Any]) -> bool:
    """Whether a record's plant, controller, seed and steps are among the spec's."""
    return all(
        rec[key] in values
        for key, values in (("plant", spec.get("plants")), ("controller", spec.get("controllers")),
                            ("seed", spec.get("seeds")), ("steps", [spec.get("steps")]))
        if isinstance(values, list)
    )


def _spec_name(out: Path) -> str:
    name = _spec_json(out).get("name")
    return name if isinstance(name, str) else out.name


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _provenance(out: Path, warn: Callable[[str], None]) -> list[str]:
    """The "Provenance" section: each session's commit, command, hardware, threads, versions."""
    lines = ["", "## Provenance", ""]
    try:
        sessions = read_sessions(out / PROVENANCE_FILE)
    except ValueError as exc:
        warn(f"{exc}; the report shows no provenance (the next study run sets the file aside)")
        return [*lines, f"`{PROVENANCE_FILE}` is unreadable."]
    if not sessions:
        return [*lines, f"No `{PROVENANCE_FILE}`: the study ran before provenance was recorded."]
    lines.append(f"{len(sessions)} session{'s' if len(sessions) != 1 else ''} started or "
                 f"resumed this study (`{PROVENANCE_FILE}`).")
    for i, session in enumerate(sessions, 1):
        workers = session.get("workers")
        what = ("" if workers is None else ", in this process" if workers == 1 else
                f", {workers} worker processes (one BLAS/torch thread each)")
        if session.get("backend") == "ray":
            what = f", Ray backend, up to {workers} runs at once (one BLAS/torch thread each)"
        lines += ["", format_provenance(
            session, heading=f"### Session {i}: {session.get('utc', 'time unknown')}{what}"
        ).rstrip("\n")]
    return lines


def build_report(
    out_dir: str | Path,
    figures: bool = True,
    *,
    on_warning: Callable[[str], None] | None = None,
) -> Path:
    """Write ``report.md``, ``records.csv`` (one row per run) and figures in a study folder from
    its records; return the report's path.

    Parameters
    ----------
    out_dir:
        The study folder.
    figures:
        Draw one response figure per (plant, plant options).
    on_warning:
        Called with each warning (a record or trajectory left out, naming the file); default
        :func:`warnings.warn`.

    Raises
    ------
    FileNotFoundError
        The folder does not exist, holds no ``records/`` or no valid record.
    ctrlbench.runfolder.RunFolderError
        The path is a file, or the folder is not writable.
    """
    out = Path(out_dir)

    def _default_warn(message: str) -> None:
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    warn = on_warning or _default_warn
    records = _study_records(out, warn)
    ensure_writable(out, "study folder")
    failed = [r for r in records if r.get("status") != "ok"]
    lines = [
        f"# Study report: {_spec_name(out)}",
        "",
        f"{len(records)} runs recorded, {len(failed)} failed. Metrics are mean ± standard "
        "deviation over seeds (NaN seeds skipped; one seed: its value). Step metrics (overshoot "
        "[%], rise and settling time [s], from the "
        "step) are defined only for step references and read nan otherwise. An episode the "
        "plant ended early (a constraint) is flagged TERMINATED: its metrics cover only the "
        "shorter episode. All runs, one row each: `records.csv`.",
        "",
    ]
    lines += _table(records)
    if failed:
        lines += ["", "## Failed runs", ""]
        lines += [f"- `{r['run_id']}`: {_one_line(r.get('error', '?'))}" for r in failed]
    damaged = _damaged_trajectories(out, records, warn)
    if figures:
        lines += ["", "## Responses", "", *_figures(out, records, damaged)]
        dist = _distributions(out, records)
        if dist:
            lines += ["", "## Distributions across seeds", "", *dist]
    lines += _provenance(out, warn)
    atomic_write_bytes(out / "records.csv", frame_of(records).to_csv(index=False).encode())
    path = out / "report.md"
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path
