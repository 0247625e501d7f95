"""The ``ctrlbench`` command line: ``list | run | check | study | report`` plus plugin commands.

Packages add sub-commands through the ``ctrlbench.cli`` entry-point group (``llm_rl`` adds
``ctrlbench llm``); a plugin command is ``main(argv) -> int`` and receives the remaining
arguments. The core imports no plugin package by name.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "parse_sets"]


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=False, highlight=False)


_WORDS = {"true": True, "false": False, "none": None, "null": None}


def _parse_value(text: str) -> Any:
    """A Python literal (``3``, ``2e-4``, ``[1, 2]``), ``true``/``false``/``none`` in any case,
    or else the text itself."""
    if text.strip().lower() in _WORDS:
        return _WORDS[text.strip().lower()]
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_sets(
    items: Sequence[str], plant_keys: list[str] | None, controller_keys: list[str] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``key=value`` items into plant and controller options.

    ``plant.key``/``controller.key`` name the target explicitly; a bare key goes to whichever of
    the two accepts it. Unknown or ambiguous keys raise ``KeyError`` listing the valid ones.
    """
    plant: dict[str, Any] = {}
    ctrl: dict[str, Any] = {}
    pk, ck = plant_keys or [], controller_keys or []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {item!r}")
        scope, dot, name = key.partition(".")
        value = _parse_value(raw)
        if dot and scope in ("plant", "controller"):
            target, valid = (plant, plant_keys) if scope == "plant" else (ctrl, controller_keys)
            if valid is not None and name not in valid:
                raise KeyError(f"unknown {scope} option {name!r}; valid {scope} options: {valid}")
            target[name] = value
            continue
        in_p = plant_keys is None or key in pk
        in_c = controller_keys is None or key in ck
        if in_p and in_c:
            raise KeyError(f"option {key!r} is ambiguous; write plant.{key} or controller.{key}")
        if not (in_p or in_c):
            raise KeyError(
                f"unknown option {key!r}; valid plant options: {pk}; valid controller options: {ck}"
            )
        (plant if in_p else ctrl)[key] = value
    return plant, ctrl


def _cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ctrlbench.registry import CONTROLLERS, plant_ids, plant_info

    con = _console()
    table = Table("plant", "description", title="plants")
    for pid in plant_ids():
        table.add_row(pid, plant_info(pid)[1])
    con.print(table)
    table = Table("controller", "description", title="controllers")
    for name in CONTROLLERS.names():
        table.add_row(name, CONTROLLERS.entry(name).description)
    con.print(table)
    return 0


def _metrics_table(metrics: dict[str, Any], title: str) -> Any:
    from rich.table import Table

    table = Table("metric", "value", title=title)
    for k, v in metrics.items():
        table.add_row(k, f"{v:.5g}" if isinstance(v, float) else str(v))
    return table


def _cmd_run(args: argparse.Namespace) -> int:
    from ctrlbench.metrics import summary
    from ctrlbench.registry import (
        CONTROLLERS,
        make_controller,
        make_plant,
        plant_info,
        plant_kwargs,
        valid_kwargs,
    )

    full_id, _ = plant_info(args.plant)
    factory = CONTROLLERS.load(args.controller)
    p_opts, c_opts = parse_sets(args.set or [], plant_kwargs(full_id), valid_kwargs(factory, 1))
    plant = make_plant(full_id, **p_opts)
    ctrl = make_controller(args.controller, plant, **c_opts)
    meta = {
        "plant": full_id,
        "controller": args.controller,
        "plant_options": p_opts,
        "controller_options": c_opts,
    }
    traj = _with_progress(plant, ctrl, args.steps, args.seed, meta)
    plant.close()
    con = _console()
    con.print(_metrics_table(summary(traj), f"{full_id} / {args.controller} (seed {args.seed})"))
    out = Path(args.out)
    stem = out / f"{full_id.split('/')[-1]}__{args.controller}__s{args.seed}"
    traj.save(stem)
    traj.plot().savefig(stem.with_suffix(".png"), dpi=110)
    con.print(f"trajectory: {stem}.npz (+ .json)   figure: {stem}.png")
    return 0


def _with_progress(
    plant: Any, ctrl: Any, steps: int | None, seed: int, meta: dict[str, Any]
) -> Any:
    from rich.progress import Progress

    from ctrlbench.simulate import simulate

    with Progress(transient=True) as progress:
        task = progress.add_task("simulating", total=steps)

        def tick(k: int, *_: Any) -> None:
            if k % 100 == 0:
                progress.update(task, completed=k)

        return simulate(plant, ctrl, steps=steps, seed=seed, callbacks=[tick], meta=meta)


def _cmd_check(args: argparse.Namespace) -> int:
    from rich.progress import Progress
    from rich.table import Table

    from ctrlbench.check import check_plant
    from ctrlbench.registry import plant_ids, plant_info

    ids = [plant_info(args.plant)[0]] if args.plant else plant_ids()
    table = Table("plant", "check", "result", title="plant conformance")
    ok = True
    reports = []
    with Progress(transient=True) as progress:
        task = progress.add_task("checking plants", total=len(ids))
        for pid in ids:
            progress.update(task, description=f"checking {pid}")
            reports.append((pid, check_plant(pid, steps=args.steps, seed=args.seed)))
            progress.advance(task)
    for pid, report in reports:
        ok &= report.ok
        for name, err in report.results.items():
            table.add_row(pid, name, "[green]pass[/]" if err is None else f"[red]FAIL[/] {err}")
    _console().print(table)
    return 0 if ok else 1


def _cmd_study(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from ctrlbench.report import build_report
    from ctrlbench.study import StudySpec, load_records, run_study

    spec = StudySpec.from_file(args.spec)
    out = Path(args.out or Path("results") / spec.name)
    total = len(spec.runs())
    already = sum(1 for r in load_records(out) if r.get("status") == "ok")
    with Progress() as progress:
        task = progress.add_task(f"study {spec.name}", total=total, completed=already)
        records = run_study(
            spec, out, workers=args.workers, on_done=lambda _: progress.advance(task)
        )
    failed = sum(1 for r in records if r.get("status") != "ok")
    path = build_report(out)
    _console().print(f"{len(records)} runs recorded ({failed} failed); report: {path}")
    return 1 if failed else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ctrlbench.report import build_report

    path = build_report(args.dir, figures=not args.no_figures)
    _console().print(path.read_text())
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ctrlbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered plants and controllers")
    r = sub.add_parser("run", help="run one controller on one plant")
    r.add_argument("plant")
    r.add_argument("controller")
    r.add_argument("--steps", type=int, default=None, help="control steps (default: episode)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="plant or controller option (plant.KEY / controller.KEY to be explicit)",
    )
    r.add_argument("--out", default="results/run", help="folder for trajectory and figure")
    c = sub.add_parser("check", help="conformance checks for one or all plants")
    c.add_argument("plant", nargs="?")
    c.add_argument("--steps", type=int, default=200)
    c.add_argument("--seed", type=int, default=0)
    s = sub.add_parser("study", help="run a study spec (.toml or .py); resumable")
    s.add_argument("spec")
    s.add_argument("--out", default=None, help="study folder (default results/<name>)")
    s.add_argument("--workers", type=int, default=1)
    rp = sub.add_parser("report", help="markdown report of a study folder")
    rp.add_argument("dir")
    rp.add_argument("--no-figures", action="store_true")
    for name in _plugin_commands():
        sub.add_parser(name, help=f"plugin command (ctrlbench {name} --help)", add_help=False)
    return p


_COMMANDS = {
    "list": _cmd_list,
    "run": _cmd_run,
    "check": _cmd_check,
    "study": _cmd_study,
    "report": _cmd_report,
}


def _plugin_commands() -> dict[str, Any]:
    """Sub-commands other packages register in the ``ctrlbench.cli`` entry-point group."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group="ctrlbench.cli")}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ctrlbench`` command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    plugins = _plugin_commands()
    if argv and argv[0] in plugins:
        return int(plugins[argv[0]].load()(argv[1:]))
    args = _parser().parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except (KeyError, TypeError, ValueError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"ctrlbench {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
