"""Study reports built from the records alone: a markdown table of metrics and figures."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ctrlbench.study import load_records
from ctrlbench.trajectory import Trajectory, atomic_write_bytes

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


def _table(records: list[dict[str, Any]]) -> list[str]:
    ok = [r for r in records if r.get("status") == "ok"]
    cols = _columns(ok)
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        groups[_group_key(r)].append(r)
    lines = [
        "| plant | controller | options | seeds | " + " | ".join(cols) + " |",
        "|" + "---|" * (4 + len(cols)),
    ]
    for (plant, ctrl, opts), recs in sorted(groups.items()):
        cells = []
        for c in cols:
            vals = np.array([float(r["metrics"].get(c, np.nan)) for r in recs])
            cells.append(_fmt(float(np.mean(vals))) if vals.size else "")
        lines.append(
            f"| {plant} | {ctrl} | {opts or '-'} | {len(recs)} | " + " | ".join(cells) + " |"
        )
    return lines


def _figures(out: Path, records: list[dict[str, Any]]) -> list[str]:
    """One figure per plant: the first reference response of each controller (lowest seed)."""
    from matplotlib.figure import Figure

    lines = []
    by_plant: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in sorted((r for r in records if r.get("status") == "ok"), key=lambda r: r["seed"]):
        by_plant[r["plant"]].setdefault(r["controller"], r)
    for plant, recs in sorted(by_plant.items()):
        fig = Figure(figsize=(8, 3.2), layout="constrained")
        ax = fig.subplots()
        ref_drawn = False
        for ctrl, rec in sorted(recs.items()):
            traj = Trajectory.load(out / rec["trajectory"])
            pairs = traj.tracking_pairs
            if not pairs:
                continue
            ref, tracked = pairs[0]
            if not ref_drawn:
                ax.plot(traj.time, traj.signal(ref), "k--", lw=1, label=ref)
                ref_drawn = True
            ax.plot(traj.time, traj.signal(tracked), lw=1, label=f"{ctrl}: {tracked}")
        ax.set_xlabel("time [s]")
        ax.legend(fontsize="small")
        ax.set_title(plant)
        name = f"fig_{plant.replace('/', '_')}.png"
        fig.savefig(out / name, dpi=110)
        lines.append(f"![{plant}]({name})")
    return lines


def build_report(out_dir: str | Path, figures: bool = True) -> Path:
    """Write ``report.md`` (and figures) in a study folder from its records; return its path."""
    out = Path(out_dir)
    records = load_records(out)
    if not records:
        raise FileNotFoundError(f"no run records under {out / 'records'}")
    spec = json.loads((out / "spec.json").read_text()) if (out / "spec.json").exists() else {}
    failed = [r for r in records if r.get("status") != "ok"]
    lines = [
        f"# Study report: {spec.get('name', out.name)}",
        "",
        f"{len(records)} runs recorded, {len(failed)} failed. Metrics are means over seeds; "
        "step metrics use the final reference value as the target.",
        "",
    ]
    lines += _table(records)
    if failed:
        lines += ["", "## Failed runs", ""]
        lines += [f"- `{r['run_id']}`: {r.get('error', '?')}" for r in failed]
    if figures:
        lines += ["", "## Responses", "", *_figures(out, records)]
    path = out / "report.md"
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path
