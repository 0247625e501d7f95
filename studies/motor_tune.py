"""Tuned vs design-rule PI on the PMSM dq current loop, scored on held-out seeds.

Claim (issue 15): ``ctrlbench tune`` on ``ctrlbench/PMSMCurrent-v0`` (gym-electric-motor's
``Cont-CC-PMSM-v0`` with GEM's default Wiener-process i_sd/i_sq references, which the episode seed
draws) finds PI gains with a lower IAE than the design rule's on seeds it was not tuned on.

The ``"pid"`` design for this plant (:class:`controllers.motor_pi.PMSMCurrentPI`) is the
technical optimum ``K_p = L / (2 T_sigma)``, ``K_i = R_s / (2 T_sigma)`` with decoupling and EMF
feed-forward (design rule: ``T_sigma`` = the control period, 1e-4 s). The tuner searches the
factors ``kp_scale`` and ``ki_scale`` on those gains (both axes), each on a log range around 1
(TPE, ``trials`` trials, mean IAE over the training seeds, ``tune_steps`` steps each). The
design rule (1, 1), the tuned pair and the two mixed pairs are then run as one study
(``ctrlbench.study.run_study``, a 2 x 2 grid) on the held-out seeds for ``steps`` steps, and the
script prints the design and tuned IAEs per seed, their means ± std, the mixed pairs' means and
the trial count. Everything lands in ``results/motor_tune/`` (``tune/`` with the Optuna
storage, report and ``best_options.json``; ``heldout/`` with the study and its report).

Run: ``python studies/motor_tune.py`` (30 trials x 3 seeds x 2000 steps, then 10 held-out seeds x
10 000 steps x 4 gain pairs: ~5 min on one idle core), ``--smoke`` (3 trials, seconds).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import math
import shutil
import statistics
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ctrlbench.provenance import format_provenance, provenance
from ctrlbench.study import StudySpec, run_study
from ctrlbench.tune import TuneSpec, parse_param, run_tune

PLANT = "ctrlbench/PMSMCurrent-v0"


@dataclass(frozen=True)
class Args:
    """Study settings."""

    trials: int = 30
    """tuning trials (TPE)"""
    train_seeds: tuple[int, ...] = (0, 1, 2)
    """episode seeds the tuner scores a trial on"""
    tune_steps: int = 2000
    """control steps per tuning run (tau = 1e-4 s)"""
    heldout_seeds: tuple[int, ...] = tuple(range(100, 110))
    """episode seeds of the comparison (never seen by the tuner)"""
    steps: int = 10_000
    """control steps per held-out run (1 s of motor time)"""
    kp_range: str = "kp_scale=0.2:5:log"
    """the tuned range of the proportional-gain factor"""
    ki_range: str = "ki_scale=0.2:5:log"
    """the tuned range of the integral-gain factor"""
    out: str = "results/motor_tune"
    """output folder (replaced on each run of the script)"""
    workers: int = 1
    """parallel trials / held-out runs"""
    smoke: bool = False
    """seconds-long version: 3 trials, 1 training seed, 300 steps, 2 held-out seeds"""


def _smoke(args: Args) -> Args:
    return Args(trials=3, train_seeds=(0,), tune_steps=300, heldout_seeds=(100, 101),
                steps=300, kp_range=args.kp_range, ki_range=args.ki_range, out=args.out,
                workers=args.workers, smoke=True)


def run(args: Args) -> dict[str, Any]:
    """Tune, then compare on the held-out seeds; returns the figures printed."""
    args = _smoke(args) if args.smoke else args
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    params = (parse_param(args.kp_range), parse_param(args.ki_range))
    spec = TuneSpec(plant=PLANT, controller="pid", params=params,
                    metric="iae", trials=args.trials, seeds=args.train_seeds,
                    steps=args.tune_steps)
    tuned = run_tune(spec, out / "tune", workers=args.workers)
    from ctrlbench.tune_report import build_tune_report

    build_tune_report(tuned.study, tuned, out / "tune")
    best = {k: float(v) for k, v in tuned.best_params.items()}
    held = StudySpec(name="motor_tune_heldout", plants=(PLANT,), controllers=("pid",),
                     seeds=args.heldout_seeds, steps=args.steps,
                     grid={f"controller.{k}": (1.0, v) for k, v in sorted(best.items())})
    records = run_study(held, out / "heldout", workers=args.workers)
    from ctrlbench.report import build_report

    build_report(out / "heldout")
    names = {(False, False): "design", (True, True): "tuned", (True, False): "kp only",
             (False, True): "ki only"}
    iae: dict[str, dict[int, float]] = {n: {} for n in names.values()}
    for r in records:
        if r["status"] != "ok":
            raise RuntimeError(f"held-out run {r['run_id']} failed: {r.get('error')}")
        o = r["controller_options"]
        which = names[(o["kp_scale"] != 1.0, o["ki_scale"] != 1.0)]
        iae[which][r["seed"]] = float(r["metrics"]["iae"])
    return {"args": args, "tuned": tuned, "best": best, "iae": iae}


def _mean_std(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else math.nan
    return f"{statistics.fmean(values):.5g} ± {sd:.2g}"


def report(res: dict[str, Any]) -> str:
    """Markdown: settings, the tuned value, per-seed IAE on held-out seeds, means and ratio."""
    args, tuned, iae = res["args"], res["tuned"], res["iae"]
    seeds = sorted(iae["design"])
    d = [iae["design"][s] for s in seeds]
    t = [iae["tuned"][s] for s in seeds]
    wins = sum(b < a for a, b in zip(d, t))
    lines = [
        f"Tuning: {tuned.finished} trials finished ({tuned.counts}), TPE, mean IAE over "
        f"training seeds {list(args.train_seeds)} x {args.tune_steps} steps; best trial "
        f"{tuned.best_trial}: kp_scale = {res['best']['kp_scale']:.4g}, ki_scale = "
        f"{res['best']['ki_scale']:.4g} (design rule: 1, 1 at t_sigma = dt), training IAE "
        f"{tuned.best_value:.5g} A*s.",
        "",
        f"Held-out seeds {seeds}, {args.steps} steps each (IAE, A*s, both axes):",
        "",
        "| seed | design rule | tuned | tuned / design |",
        "|---|---|---|---|",
        *(f"| {s} | {a:.5g} | {b:.5g} | {b / a:.3f} |" for s, a, b in zip(seeds, d, t)),
        f"| mean ± std | {_mean_std(d)} | {_mean_std(t)} | "
        f"{statistics.fmean(t) / statistics.fmean(d):.3f} |",
        "",
        f"Tuned lower on {wins} of {len(seeds)} held-out seeds. One factor alone (mean IAE): "
        f"kp only {statistics.fmean(iae['kp only'].values()):.5g}, ki only "
        f"{statistics.fmean(iae['ki only'].values()):.5g}.",
    ]
    return "\n".join(lines)


def _parse(argv: list[str] | None = None) -> Args:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in fields(Args):
        if f.type in ("bool", bool):
            p.add_argument(f"--{f.name}", action="store_true")
        elif "tuple" in str(f.type):
            p.add_argument(f"--{f.name}", type=int, nargs="+", default=list(f.default))
        else:
            p.add_argument(f"--{f.name}", type=type(f.default), default=f.default)
    ns = vars(p.parse_args(argv))
    return Args(**{k: tuple(v) if isinstance(v, list) else v for k, v in ns.items()})


def main(argv: list[str] | None = None) -> None:
    res = run(_parse(argv))
    print(report(res))
    print()
    print(format_provenance(provenance(), heading="### Provenance"))


if __name__ == "__main__":
    main()
