"""``ctrlbench tune PLANT CONTROLLER --param NAME=LOW:HIGH[:log] ...``: the command's parser and
body (see :mod:`ctrlbench.tune`)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_tune_parser", "cmd_tune"]


def add_tune_parser(sub: Any) -> None:
    """Add the ``tune`` sub-command to ``sub`` (argparse sub-parsers)."""
    t = sub.add_parser("tune", help="tune controller options with Optuna (TPE); resumable")
    t.add_argument("plant")
    t.add_argument("controller")
    t.add_argument("--param", action="append", required=True, metavar="NAME=LOW:HIGH[:log]",
                   help="a controller option to tune and its range (repeat for several)")
    t.add_argument("--metric", default="iae", help="run metric to optimize (default: iae)")
    t.add_argument("--maximize", action="store_true",
                   help="maximize the metric (default: minimize)")
    t.add_argument("--trials", type=int, default=20,
                   help="finished trials to reach; a rerun continues up to it (default: 20)")
    t.add_argument("--seeds", default="0", help="training seeds, e.g. 0,1,2 or 0-4 (default: 0)")
    t.add_argument("--steps", type=int, default=None, help="steps per run (default: episode)")
    t.add_argument("--storage", default=None,
                   help="Optuna storage URL (default: sqlite:///<out>/optuna.db); e.g. "
                        "postgresql+psycopg2://user:password@host/db to tune from many machines")
    t.add_argument("--study-name", default=None,
                   help="Optuna study name (default: <Plant>__<controller>__<metric>)")
    t.add_argument("--sampler", default="tpe", choices=("tpe", "random"))
    t.add_argument("--pruner", default="median", choices=("median", "none"))
    t.add_argument("--sampler-seed", type=int, default=0)
    t.add_argument("--workers", type=int, default=1,
                   help="trials at once (default 1: one after another, with pruning)")
    t.add_argument("--backend", default="local", choices=("local", "ray"),
                   help="where the runs of parallel trials execute (default: local pool)")
    t.add_argument("--address", default=None, help="Ray cluster address (with --backend ray)")
    t.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="wall-clock limit per run; a run past it fails its trial")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="fixed plant or controller option (plant.KEY / controller.KEY)")
    t.add_argument("--out", default=None,
                   help="tune folder (default results/tune/<study name>)")
    t.add_argument("--no-figures", action="store_true")


def cmd_tune(args: argparse.Namespace) -> int:
    """Run ``ctrlbench tune``; print the best options and where they were written."""
    from rich.console import Console

    from ctrlbench.cli import parse_sets
    from ctrlbench.registry import plant_info, plant_options
    from ctrlbench.tune import TuneSpec, parse_param, run_tune, seeds_of
    from ctrlbench.tune_report import build_tune_report

    if args.address is not None and args.backend != "ray":
        raise ValueError(f"--address {args.address!r} needs --backend ray")
    full = plant_info(args.plant)[0]
    cls = plant_options(full)
    p_keys = [] if cls is None else [f.name for f in dataclasses.fields(cls)]
    p_opts, c_opts = parse_sets(args.set or [], p_keys, None)
    spec = TuneSpec(
        plant=full, controller=args.controller, params=tuple(parse_param(p) for p in args.param),
        metric=args.metric, direction="maximize" if args.maximize else "minimize",
        trials=args.trials, seeds=seeds_of(args.seeds), steps=args.steps,
        plant_options=p_opts, controller_options=c_opts, sampler=args.sampler,
        pruner=args.pruner, sampler_seed=args.sampler_seed, timeout_s=args.timeout)
    name = args.study_name
    out = Path(args.out) if args.out else Path("results") / "tune" / (
        name or f"{full.split('/')[-1]}__{args.controller}__{args.metric}")

    def warn(message: str) -> None:
        print(f"ctrlbench tune: warning: {' '.join(message.split())}", file=sys.stderr)

    con = Console(highlight=False, emoji=False)

    def show(trial: Any) -> None:
        value = "-" if trial.value is None else f"{trial.value:.5g}"
        con.print(f"trial {trial.number}: {trial.state.name} {value} {dict(trial.params)}",
                  markup=False, soft_wrap=True)

    result = run_tune(spec, out, storage=args.storage, study_name=name, workers=args.workers,
                      backend=args.backend, address=args.address, on_trial=show,
                      on_warning=warn)
    report = build_tune_report(result.study, result, out, figures=not args.no_figures)
    con.print(f"best {spec.metric} = {result.best_value:.6g} (trial {result.best_trial}, "
              f"{result.finished} trials finished) with {result.best_params}\n"
              f"options file: {result.options_file}   report: {report}", markup=False,
              soft_wrap=True)
    return 0
