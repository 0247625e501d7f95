"""LSTMc vs PI vs NMPC on the dextrose batch crystallizer (issue 8; Sitapure & Kwon 2023).

Claim (MODELS.md section 3, *unverified*): an LSTM controller trained on >= 7000 simulated
operating conditions holds the final mean crystal size within 2 % of its set-point and reaches
about 3x lower deviation than an MPC, where a PI needs retuning per grade.

Pipeline (each stage resumable; a rerun of the same command skips what is done):

1. **Data** (:mod:`controllers.lstmc_data`): ``--runs`` batches of ``Crystallization-v0`` under
   random hourly jacket profiles (random conditions, nominal kinetics), set-point = size
   reached; cached with checksums in ``<out>/lstmc/data``.
2. **Training** (:func:`controllers.lstmc.train_lstmc`): ``<out>/lstmc/model.pt``, checkpointed
   each epoch. ``--model PATH`` evaluates an existing model instead; ``--train_only`` stops here.
3. **Evaluation** (``ctrlbench.study.run_study``, records and trajectories under
   ``<out>/eval/<set>/<group>``) of ``pid`` (SIMC PI tuned on grade "medium"), ``mpc`` (NMPC on
   the nominal moments model, states measured) and ``lstmc`` on
   - ``grades``: the named grades small/medium/large/coarse (conditions never seen in training),
     noise-free (seed 0) and with each ``--noise_levels`` sensor noise (``--noisy_seeds`` seeds);
   - ``systems``: held-out systems, ``grade="random"`` with ``kinetic_uncertainty`` (growth
     +-5 %, nucleation +-10 %), seeds ``0..--systems-1`` (training data uses seeds >= 1e6),
     noise-free and with each noise level.

Metrics per run, on the true (noise-free) mean size: final set-point deviation
``100 (size_end - ref) / ref`` [%] (the table shows the mean and max of its absolute value), IAE
``sum |ref - size| dt`` [um h], jacket effort ``sum |T_j[k+1] - T_j[k]|`` of the applied jacket
temperature [C], and constraint violations: commands the plant had to rate-limit plus observation
samples outside the declared signal bounds (a command more than 1e-3 C from the applied value
counts as rate-limited; jacket commands outside 5-40 C raise, so none reach
the plant); ``solver fallbacks`` counts NMPC steps that applied the shifted previous plan after
a failed solve (``Trajectory.info["controller.fallback"]``); ``failed`` counts runs recorded as
errors or ended by the plant's solver.

Outputs in ``<out>``: ``results.md`` (table), ``results.json`` (table, per-run rows, timings,
model metadata), ``figure.png`` (mean size and jacket trajectories of the three controllers on the
``coarse`` grade and on held-out system 0 with the largest noise), all written atomically.

Run:
- ``python studies/crystallization_lstmc.py --smoke`` (seconds; tiny data and network, 3 short
  runs per controller; run by ``tests/test_crystallization_study.py``);
- ``python studies/crystallization_lstmc.py --workers 2`` (full: 7000 batches, 40 epochs, 134
  evaluation batches per controller); it prints its expected time first (< 2 h on 2 cores).
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from controllers.lstmc import LSTMRegressor, TrainSettings, train_lstmc
from controllers.lstmc_data import DataSettings
from ctrlbench.interrupt import run_script
from ctrlbench.io import atomic_write_bytes, save_figure
from ctrlbench.options import Options, option, parse_flags
from ctrlbench.provenance import format_provenance, provenance

PLANT = "ctrlbench/Crystallization-v0"
GRADES = ("small", "medium", "large", "coarse")
CONTROLLERS = ("pid", "mpc", "lstmc")
#: Seconds per 144-step batch on the shared 2-core VM, one process (measured; for the estimate).
SECONDS_PER_BATCH = {"data": 0.36, "pid": 0.3, "mpc": 10.0, "lstmc": 0.5}
RATE_TOL = 1e-3
"""A command farther than this from the applied jacket temperature [C] was rate-limited (solver
tolerances put the NMPC's rate constraint ~1e-6 C over the limit)."""
WINDOWS_PER_SECOND = 25_000.0
"""Training throughput (hidden 64, window 12, batch 256, one thread; measured)."""


@dataclass(frozen=True)
class Args(Options):
    """Study settings (``--smoke`` replaces the sizes by tiny ones)."""

    label = "crystallization_lstmc"
    out: str | None = option(None, "study folder (default results/crystallization_lstmc, "
                             "results/crystallization_lstmc_smoke with --smoke)")
    workers: int = option(2, "processes for the data simulation and the evaluation", ge=1,
                          le=64)
    smoke: bool = option(False, "seconds-long version: tiny data, network and runs")
    runs: int = option(7000, "training batches (operating conditions)", ge=1, le=999_999)
    epochs: int = option(40, "training epochs", ge=1, le=10_000)
    hidden: int = option(64, "LSTM hidden units", ge=1, le=1024)
    window: int = option(12, "LSTM window W [steps]", ge=1, le=144)
    samples_per_run: int = option(48, "windows per training batch (0 = all)", ge=0, le=144)
    input_noise: float = option(0.15, "training noise augmentation, relative std up to [-]",
                                ge=0.0, le=0.5)
    train_seed: int = option(0, "training seed (initialisation, shuffle, validation split); "
                             "the data and the PI / NMPC evaluations do not depend on it", ge=0,
                             le=2**31 - 1)
    model: str | None = option(None, "evaluate this trained model.pt instead of training one")
    train_only: bool = option(False, "stop after training")
    systems: int = option(30, "held-out systems (seeds 0..systems-1)", ge=0, le=100_000)
    noisy_seeds: int = option(5, "seeds per grade and noise level", ge=0, le=100_000)
    noise_levels: tuple[float, ...] = option((0.10, 0.15), "sensor noise levels [-]", ge=0.0,
                                             le=0.5)
    steps: int | None = option(None, "steps per evaluation batch (None: the whole 144)", ge=1,
                               le=144)


SMOKE = {"runs": 12, "epochs": 2, "hidden": 8, "window": 4, "samples_per_run": 0,
         "systems": 1, "noisy_seeds": 0, "noise_levels": (0.10,), "steps": 12, "workers": 1}


def settings_of(args: Args) -> tuple[DataSettings, TrainSettings]:
    """Data and training settings of the study."""
    if args.smoke:
        data = DataSettings(runs=args.runs, steps=24, n_cells=50, chunk=6)
    else:
        data = DataSettings(runs=args.runs)
    train = TrainSettings(window=args.window, hidden=args.hidden, epochs=args.epochs,
                          samples_per_run=args.samples_per_run, input_noise=args.input_noise,
                          seed=args.train_seed)
    return data, train


# -- evaluation specs --------------------------------------------------------------------------
def eval_sets(args: Args) -> list[tuple[str, dict[str, Any], dict[str, tuple[Any, ...]],
                                        tuple[int, ...]]]:
    """``(set name, plant options, grid, seeds)`` of every evaluation set."""
    grades = ("medium",) if args.smoke else GRADES
    out: list[tuple[str, dict[str, Any], dict[str, tuple[Any, ...]], tuple[int, ...]]] = [
        ("grades-clean", {"noise": 0.0}, {"plant.grade": grades}, (0,))]
    if args.noisy_seeds and args.noise_levels:
        out.append(("grades-noisy", {}, {"plant.grade": grades,
                                         "plant.noise": args.noise_levels},
                    tuple(range(args.noisy_seeds))))
    if args.systems:
        out.append(("systems", {"grade": "random", "kinetic_uncertainty": True},
                    {"plant.noise": (0.0, *args.noise_levels)}, tuple(range(args.systems))))
    return out


def eval_specs(args: Args, model: Path, out: Path) -> list[tuple[Path, Any]]:
    """``(folder, StudySpec)``: per set, the baselines and the LSTMc (its folder keyed by the
    model's weights, so another model never reuses these records)."""
    from ctrlbench.study import StudySpec

    key = LSTMRegressor.load(model).fingerprint()[:12]
    specs = []
    for name, plant_opts, grid, seeds in eval_sets(args):
        for group, ctrls, copts in (("baselines", ("pid", "mpc"), {}),
                                    (f"lstmc-{key}", ("lstmc",),
                                     {"lstmc": {"path": str(model.resolve())}})):
            spec = StudySpec(name=f"crystallization-{name}-{group}", plants=(PLANT,),
                             controllers=ctrls, seeds=seeds, steps=args.steps,
                             plant_options=plant_opts, controller_options=copts, grid=grid)
            specs.append((out / "eval" / name / group, spec))
    return specs


def estimate_seconds(args: Args) -> dict[str, float]:
    """Expected wall time of each stage from measured rates (cached stages take less)."""
    data, train = settings_of(args)
    w = max(args.workers, 1)
    n_eval = sum(len(seeds) * math.prod(len(v) for v in grid.values())
                 for _, _, grid, seeds in eval_sets(args))
    frac = (args.steps or 144) / 144
    windows = data.runs * (1 - train.val_fraction) * (train.samples_per_run or data.steps)
    return {
        "data": 0.0 if args.model else data.runs * SECONDS_PER_BATCH["data"] * data.steps
        / 144 / w,
        "training": 0.0 if args.model else train.epochs * windows / WINDOWS_PER_SECOND,
        "evaluation": 0.0 if args.train_only else sum(
            n_eval * SECONDS_PER_BATCH[c] * frac for c in CONTROLLERS) / w,
    }


# -- metrics -----------------------------------------------------------------------------------
def run_metrics(record: dict[str, Any], out: Path) -> dict[str, Any]:
    """The study's metrics of one finished run, from its trajectory (true mean size)."""
    from ctrlbench.trajectory import Trajectory

    traj = Trajectory.load(out / record["trajectory"])
    ref = float(traj.signal("mean_size_ref")[-1])
    size = traj.info["mean_size_true"]
    applied = traj.info["T_j_applied"]
    clipped = int(np.sum(np.abs(traj.actions[:, 0] - applied) > RATE_TOL))
    return {
        "final_dev_pct": 100.0 * (float(size[-1]) - ref) / ref,
        "iae_um_h": float(np.sum(np.abs(ref - size)) * traj.dt / 3600.0),
        "jacket_effort_C": float(np.sum(np.abs(np.diff(applied)))),
        "violations": clipped + int(record["metrics"]["constraint_violations"]),
        "terminated": bool(traj.terminated),
        "fallbacks": int(np.sum(traj.info.get("controller.fallback", 0.0))),
        "time_h": (traj.time / 3600.0).tolist(),  # n + 1 boundaries; size and jacket: n
        "size": size.tolist(),
        "jacket": applied.tolist(),
        "ref": ref,
    }


def collect(specs: list[tuple[Path, Any]], records: dict[Path, list[dict[str, Any]]]
            ) -> list[dict[str, Any]]:
    """One row per run: set, noise, controller, case, metrics (or the error)."""
    rows = []
    for folder, _ in specs:
        for rec in records[folder]:
            popts = rec["plant_options"]
            row: dict[str, Any] = {
                "set": "grades" if folder.parent.name.startswith("grades") else "systems",
                "noise": float(popts.get("noise", 0.0)), "controller": rec["controller"],
                "case": popts.get("grade", "random"), "seed": rec["seed"],
                "status": rec["status"]}
            if rec["status"] == "ok":
                row.update(run_metrics(rec, folder))
            else:
                row["error"] = rec.get("error", "")
            rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (set, noise, controller): n, mean/max |final deviation|, mean IAE, effort,
    violations, failed."""
    groups: dict[tuple[str, float, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["set"], r["noise"], r["controller"])].append(r)
    out = []
    order = {c: i for i, c in enumerate(CONTROLLERS)}
    for (s, noise, ctrl), rs in sorted(groups.items(),
                                       key=lambda kv: (kv[0][0], kv[0][1], order[kv[0][2]])):
        ok = [r for r in rs if r["status"] == "ok"]
        dev = np.abs([r["final_dev_pct"] for r in ok]) if ok else np.array([np.nan])
        out.append({
            "set": s, "noise": noise, "controller": ctrl, "n": len(rs),
            "mean_abs_dev_pct": float(np.mean(dev)), "max_abs_dev_pct": float(np.max(dev)),
            "within_2pct": int(np.sum(dev < 2.0)) if ok else 0,
            "iae_um_h": float(np.mean([r["iae_um_h"] for r in ok])) if ok else math.nan,
            "jacket_effort_C": float(np.mean([r["jacket_effort_C"] for r in ok])) if ok
            else math.nan,
            "violations": int(sum(r["violations"] for r in ok)),
            "fallbacks": int(sum(r["fallbacks"] for r in ok)),
            "failed": len(rs) - len(ok) + sum(r["terminated"] for r in ok),
        })
    return out


def markdown(tab: list[dict[str, Any]]) -> str:
    """The table as markdown, with the LSTMc / MPC deviation ratio per row group."""
    lines = ["| set | noise | controller | runs | mean abs final dev [%] | max [%] | within 2 % "
             "| IAE [um h] | jacket effort [C] | violations | solver fallbacks | failed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in tab:
        lines.append(
            f"| {t['set']} | {t['noise']:.2f} | {t['controller']} | {t['n']} | "
            f"{t['mean_abs_dev_pct']:.2f} | {t['max_abs_dev_pct']:.2f} | {t['within_2pct']} | "
            f"{t['iae_um_h']:.1f} | {t['jacket_effort_C']:.1f} | {t['violations']} | "
            f"{t['fallbacks']} | {t['failed']} |")
    by = {(t["set"], t["noise"], t["controller"]): t for t in tab}
    lines.append("")
    for (s, noise, ctrl), t in by.items():
        mpc = by.get((s, noise, "mpc"))
        if ctrl == "lstmc" and mpc is not None and mpc["mean_abs_dev_pct"] > 0:
            ratio = mpc["mean_abs_dev_pct"] / max(t["mean_abs_dev_pct"], 1e-12)
            lines.append(f"- {s}, noise {noise:.2f}: MPC / LSTMc mean abs deviation = "
                         f"{ratio:.2f} (paper: ~3); LSTMc mean {t['mean_abs_dev_pct']:.2f} % "
                         f"(paper: < 2 %)")
    return "\n".join(lines) + "\n"


def figure(rows: list[dict[str, Any]], path: Path) -> None:
    """Mean size and jacket of each controller on two cases, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r["status"] == "ok"]
    noisy = max((r["noise"] for r in ok if r["set"] == "systems"), default=0.0)
    cases = [("grades", lambda r: r["case"] == "coarse" and r["noise"] == 0.0),
             ("systems", lambda r: r["seed"] == 0 and r["noise"] == noisy)]
    fig, axes = plt.subplots(2, 2, figsize=(11, 6), sharex=True, squeeze=False)
    for j, (s, pick) in enumerate(cases):
        chosen = [r for r in ok if r["set"] == s and pick(r)] or \
            [r for r in ok if r["set"] == s][:3]
        chosen.sort(key=lambda r: CONTROLLERS.index(r["controller"]))
        for r in chosen:
            t = np.asarray(r["time_h"])
            axes[0, j].plot(t[1:], r["size"], label=r["controller"])
            axes[1, j].stairs(r["jacket"], t, baseline=None, label=r["controller"])
        if chosen:
            axes[0, j].axhline(chosen[0]["ref"], color="k", ls="--", lw=0.8, label="set-point")
            axes[0, j].set_title(f"{s}: {chosen[0]['case']}, seed {chosen[0]['seed']}, "
                                 f"noise {chosen[0]['noise']:.2f}")
        axes[0, j].set_ylabel("true mean size [um]")
        axes[1, j].set_ylabel("applied jacket [C]")
        axes[1, j].set_xlabel("time [h]")
        axes[0, j].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


# -- driver ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> Args:
    """Flags from :class:`Args`; ``--smoke`` fills the sizes not given explicitly."""
    return parse_flags(Args, argv, description=__doc__.splitlines()[0],
                       presets={"smoke": SMOKE})


def run(args: Args) -> dict[str, Any]:
    """The whole study; returns what ``results.json`` holds."""
    from ctrlbench.study import run_study

    out = Path(args.out or ("results/crystallization_lstmc_smoke" if args.smoke
                            else "results/crystallization_lstmc"))
    est = estimate_seconds(args)
    print(f"expected time (2-core VM rates; cached stages are skipped): data "
          f"{est['data'] / 60:.1f} min, training {est['training'] / 60:.1f} min, evaluation "
          f"{est['evaluation'] / 60:.1f} min, total {sum(est.values()) / 60:.1f} min "
          f"({sum(est.values()):.0f} s)")
    data, train = settings_of(args)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if args.model:
        model = Path(args.model)
    else:
        model = train_lstmc(out / "lstmc", data, train, workers=args.workers,
                            progress=not args.smoke)
    timings["train_total_s"] = time.perf_counter() - t0
    if args.train_only:
        return {"model": str(model), "timings": timings}
    specs = eval_specs(args, model, out)
    records = {}
    t1 = time.perf_counter()
    from tqdm import tqdm

    for folder, spec in specs:
        with tqdm(desc=f"{folder.parent.name}/{folder.name}", unit="run", disable=args.smoke,
                  dynamic_ncols=True) as bar:

            def plan(total: int, done: int, bar: Any = bar) -> None:
                bar.reset(total)
                bar.update(done)

            def tick(_record: dict[str, Any], bar: Any = bar) -> None:
                bar.update(1)

            records[folder] = run_study(spec, folder, workers=args.workers, on_plan=plan,
                                        on_done=tick,
                                        on_warning=lambda m: print(m, file=sys.stderr))
    timings["eval_s"] = time.perf_counter() - t1
    rows = collect(specs, records)
    tab = table(rows)
    meta = LSTMRegressor.load(model).meta_
    result = {"args": asdict(args), "table": tab, "timings": timings, "model": str(model),
              "model_meta": meta, "estimate_s": est,
              "rows": [{k: v for k, v in r.items() if k not in ("time_h", "size", "jacket")}
                       for r in rows], "provenance": provenance()}
    atomic_write_bytes(out / "results.json", json.dumps(result, indent=1).encode())
    atomic_write_bytes(out / "results.md", (markdown(tab) + "\n" + format_provenance(
        result["provenance"])).encode())
    figure(rows, out / "figure.png")
    print(markdown(tab))
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'figure.png'}")
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line entry; Ctrl-C stops with the finished parts kept (rerun to resume)."""
    return run_script(lambda: parse_args(argv), _timed_run)


def _timed_run(args: Args) -> int:
    t0 = time.perf_counter()
    run(args)
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
