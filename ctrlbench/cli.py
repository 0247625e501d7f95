"""The ``ctrlbench`` command line: ``list | run | check | train | study | tune | report`` plus
plugin commands.

Packages add sub-commands through the ``ctrlbench.cli`` entry-point group (``llm_rl`` adds
``ctrlbench llm``); a plugin command is ``main(argv) -> int`` and receives the remaining
arguments. The core imports no plugin package by name.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from ctrlbench.options import parse_value

__all__ = ["main", "parse_sets", "split_sets"]


def _console() -> Any:
    from rich.console import Console

    # names, options and error messages are printed as written: no emoji codes, no
    # highlighting; markup only in our own literals (dynamic text goes through escape/Text)
    return Console(stderr=False, highlight=False, emoji=False)


def _warn(command: str) -> Any:
    def warn(message: str) -> None:
        print(f"ctrlbench {command}: warning: {_one_line(message)}", file=sys.stderr)

    return warn


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _check_seed(seed: int) -> None:
    from ctrlbench.study_spec import MAX_SEED

    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"--seed must be an integer in [0, {MAX_SEED}], got {seed}")


def _check_steps(steps: int | None) -> None:
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be an integer >= 1, got {steps}")


def parse_sets(
    items: Sequence[str], plant_keys: list[str] | None, controller_keys: list[str] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``key=value`` items into plant and controller options.

    ``plant.key``/``controller.key`` name the target explicitly; a bare key goes to whichever of
    the two accepts it. Unknown or ambiguous keys raise ``KeyError`` listing the valid ones.
    """
    out = split_sets(items, {"plant": plant_keys, "controller": controller_keys})
    return out["plant"], out["controller"]


def split_sets(items: Sequence[str], scopes: dict[str, list[str] | None]
               ) -> dict[str, dict[str, Any]]:
    """Split ``key=value`` items among ``scopes`` (name -> valid keys; ``None``: any key, but
    only when written ``<scope>.key`` while another scope has a key list).

    ``<scope>.key`` names the target explicitly; a bare key goes to the one scope that accepts
    it. Unknown or ambiguous keys raise ``KeyError`` listing the valid ones.
    """
    out: dict[str, dict[str, Any]] = {name: {} for name in scopes}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {item!r}")
        scope, dot, name = key.partition(".")
        value = parse_value(raw)
        if dot and scope in scopes:
            valid = scopes[scope]
            if valid is not None and name not in valid:
                raise KeyError(f"unknown {scope} option {name!r}; valid {scope} options: {valid}")
            out[scope][name] = value
            continue
        listed = any(valid is not None for valid in scopes.values())
        takers = [sc for sc, valid in scopes.items()
                  if (valid is None and not listed) or (valid is not None and key in valid)]
        if not takers and not dot:
            takers = [sc for sc, valid in scopes.items() if valid is None]
        if len(takers) > 1:
            raise KeyError(f"option {key!r} is ambiguous; write "
                           + " or ".join(f"{sc}.{key}" for sc in takers))
        if not takers:
            raise KeyError(f"unknown option {key!r}; "
                           + "; ".join(f"valid {sc} options: {v}" for sc, v in scopes.items()))
        out[takers[0]][key] = value
    return out


def _cmd_list(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from ctrlbench.capabilities import Provides, missing
    from ctrlbench.registry import CONTROLLERS, PLANTS, plant_ids, plant_info

    con = _console()
    table = Table("plant", "description", title="plants")
    for pid in plant_ids():
        table.add_row(escape(pid), escape(plant_info(pid)[1]))
    con.print(table)
    table = Table("controller", "description", title="controllers")
    for name in CONTROLLERS.names():
        table.add_row(escape(name), escape(CONTROLLERS.entry(name).description))
    con.print(table)
    names = CONTROLLERS.names()
    matrix = Table("plant", *map(escape, names), title="applicability (plant x controller)")
    why = []
    for pid in plant_ids():
        provides = PLANTS.entry(pid).provides or Provides()
        cells = []
        for name in names:
            lacks = missing(CONTROLLERS.entry(name).resolved_requires(), provides)
            cells.append("yes" if not lacks else "-")
            if lacks:
                why.append(f"  {name} on {pid}: lacks {'; '.join(lacks)}")
        matrix.add_row(escape(pid), *cells)
    con.print(matrix)
    if why:
        con.print("not applicable:\n" + "\n".join(why), markup=False)
    return 0


def _metrics_table(metrics: dict[str, Any], unit_of: dict[str, str], title: str) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table("metric", "value", "unit", title=escape(title))
    for k, v in metrics.items():
        table.add_row(escape(k), f"{v:.5g}" if isinstance(v, float) else escape(str(v)),
                      escape(unit_of.get(k, "")))
    return table


def _option_names(cls: Any) -> list[str]:
    import dataclasses

    return [] if cls is None else [f.name for f in dataclasses.fields(cls)]


def _cmd_run(args: argparse.Namespace) -> int:
    from ctrlbench.metrics import summary, units
    from ctrlbench.records import nonfinite_problem
    from ctrlbench.registry import (
        check_applicable,
        controller_options,
        make_controller,
        make_plant,
        plant_info,
        plant_options,
        split_controller,
    )
    from ctrlbench.runfolder import ensure_writable

    full_id, _ = plant_info(args.plant)
    split_controller(args.controller)
    _check_seed(args.seed)
    _check_steps(args.steps)
    probe = make_plant(full_id)  # the controller's options may depend on the plant's model
    try:
        check_applicable(args.controller, probe)
        c_keys = _option_names(controller_options(args.controller, probe))
    finally:
        probe.close()
    p_opts, c_opts = parse_sets(args.set or [], _option_names(plant_options(full_id)), c_keys)
    if args.options:
        from ctrlbench.tune_options import read_options_file

        c_opts = {**read_options_file(args.options, split_controller(args.controller)[0]),
                  **c_opts}  # --set wins over the file
    what = f"{full_id} / {args.controller} with {_options_text(p_opts, c_opts)}"
    plant = _built(what, make_plant, full_id, **p_opts)
    try:
        ctrl = _built(what, make_controller, args.controller, plant, **c_opts)
        out = ensure_writable(args.out, "--out folder")  # before the (long) simulation
        meta = {"plant": full_id, "controller": args.controller, "plant_options": p_opts,
                "controller_options": c_opts}
        traj = _with_progress(plant, ctrl, args.steps, args.seed, meta)
    finally:
        plant.close()
    metrics = summary(traj)
    problem = nonfinite_problem(traj, metrics)
    if problem:
        raise ValueError(f"{what}: {problem}")
    con = _console()
    con.print(_metrics_table(metrics, units(traj),
                             f"{full_id} / {args.controller} (seed {args.seed})"))
    if traj.terminated:
        con.print(f"[bold red]warning:[/] the plant terminated the episode early at step "
                  f"{len(traj)} (t = {metrics['duration']:.4g} s); the metrics cover only that.")
    stem = out / re.sub(r"[^A-Za-z0-9._-]", "_",
                        f"{full_id.split('/')[-1]}__{args.controller}__s{args.seed}")
    traj.save(stem)
    traj.plot().savefig(stem.with_suffix(".png"), dpi=110)
    con.print(f"trajectory: {stem}.npz (+ .json)   figure: {stem}.png", markup=False,
              soft_wrap=True)
    return 0


def _built(what: str, build: Any, *args: Any, **kwargs: Any) -> Any:
    """``build(*args, **kwargs)``; a failure other than a bad option (e.g. a design that cannot
    be done for these options) becomes a ``ValueError`` naming the run."""
    try:
        return build(*args, **kwargs)
    except (KeyError, TypeError, ValueError):
        raise
    except Exception as exc:
        raise ValueError(f"cannot build {what}: {type(exc).__name__}: {exc}") from None


def _options_text(p_opts: dict[str, Any], c_opts: dict[str, Any]) -> str:
    items = [f"plant.{k}={v!r}" for k, v in p_opts.items()]
    items += [f"controller.{k}={v!r}" for k, v in c_opts.items()]
    return ", ".join(items) or "default options"


def _with_progress(
    plant: Any, ctrl: Any, steps: int | None, seed: int, meta: dict[str, Any]
) -> Any:
    from rich.progress import Progress

    from ctrlbench.interrupt import raise_if_interrupted
    from ctrlbench.simulate import simulate

    spec = getattr(plant.unwrapped, "spec", None)
    limit = getattr(spec, "max_episode_steps", None)
    total = min(steps, limit) if steps is not None and limit else steps or limit
    with Progress(transient=True) as progress:
        task = progress.add_task("simulating", total=total)

        def tick(k: int, *_: Any) -> None:
            raise_if_interrupted()  # a Ctrl-C a solver swallowed
            if k % 100 == 0:
                progress.update(task, completed=k)

        try:
            traj = simulate(plant, ctrl, steps=steps, seed=seed, callbacks=[tick], meta=meta)
        except (KeyError, TypeError, ValueError):
            raise
        except Exception as exc:  # the closed loop failed for these options
            raise_if_interrupted()
            raise ValueError(f"the run failed: {type(exc).__name__}: {exc}") from None
        raise_if_interrupted()
        return traj


def _cmd_check(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.progress import Progress
    from rich.table import Table
    from rich.text import Text

    from ctrlbench.check import check_plant
    from ctrlbench.registry import plant_ids, plant_info, plant_options, smoke_options

    _check_steps(args.steps)
    _check_seed(args.seed)
    ids = [plant_info(args.plant)[0]] if args.plant else plant_ids()
    if args.set and not args.plant:
        raise ValueError("--set needs one plant: ctrlbench check PLANT --set key=value")
    sets = split_sets(args.set or [], {"plant": _option_names(plant_options(ids[0]))}
                      )["plant"] if args.set else {}
    opts = {pid: {**(smoke_options(pid) if args.smoke else {}), **sets} for pid in ids}
    table = Table("plant", "check", "result", title="plant conformance")
    ok = True
    reports = []
    with Progress(transient=True) as progress:
        task = progress.add_task("checking plants", total=len(ids))
        for pid in ids:
            progress.update(task, description=f"checking {escape(pid)}")
            reports.append((pid, check_plant(pid, steps=args.steps, seed=args.seed,
                                             **opts[pid])))
            progress.advance(task)
    for pid, report in reports:
        ok &= report.ok
        for name, err in report.results.items():
            result = Text("pass", style="green") if err is None else Text.assemble(
                ("FAIL", "red"), " ", _one_line(err))
            table.add_row(Text(pid), Text(name), result)
    _console().print(table)
    for pid in ids:
        if opts[pid]:
            print(f"{pid} checked with {_options_text(opts[pid], {})}")
    return 0 if ok else 1


def _cmd_study(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.progress import Progress

    from ctrlbench.report import build_report
    from ctrlbench.study import MAX_WORKERS, StudySpec, run_study

    _check_steps(args.steps)
    if not 1 <= args.workers <= MAX_WORKERS:
        raise ValueError(f"--workers must be an integer in [1, {MAX_WORKERS}], got "
                         f"{args.workers}")
    if args.address is not None and args.backend != "ray":
        raise ValueError(f"--address {args.address!r} needs --backend ray")
    spec = StudySpec.from_file(args.spec)
    if args.steps is not None:
        spec = dataclasses.replace(spec, steps=args.steps)
    if args.timeout is not None:
        spec = dataclasses.replace(spec, timeout_s=args.timeout)
    out = Path(args.out) if args.out else Path("results") / spec.name
    warn = _warn("study")
    with Progress() as progress:
        task = progress.add_task(f"study {escape(spec.name)}", total=None)
        records = run_study(
            spec, out, workers=args.workers, overwrite=args.overwrite,
            preload=[args.spec] if str(args.spec).endswith(".py") else [],
            on_plan=lambda total, done: progress.update(task, total=total, completed=done),
            on_done=lambda _: progress.advance(task), on_warning=warn,
            backend=args.backend, address=args.address,
        )
    failed = sum(1 for r in records if r.get("status") != "ok")
    path = build_report(out, on_warning=warn)
    _console().print(f"{len(records)} runs recorded ({failed} failed); report: {path}",
                     markup=False, soft_wrap=True)
    return 1 if failed else 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ctrlbench.registry import ALGORITHMS, plant_options
    from ctrlbench.training import TrainSettings, is_gym_id, train

    ALGORITHMS.entry(args.algorithm)  # unknown: lists the valid algorithms
    gym_id = is_gym_id(args.plant)
    if not gym_id:
        from ctrlbench.registry import plant_info

        plant_info(args.plant)  # unknown: lists the valid plants
    p_keys = None if gym_id else _option_names(plant_options(args.plant))
    scopes = {"train": _option_names(TrainSettings),
              args.algorithm: _option_names(ALGORITHMS.options(args.algorithm)),
              "plant": p_keys}
    sets = split_sets(args.set or [], scopes)
    settings = dict(sets["train"])
    for flag in ("steps", "seed"):
        if getattr(args, flag) is not None:
            settings[flag] = getattr(args, flag)
    if args.progress:
        settings["progress_bar"] = True
    name = f"{args.algorithm}_{args.plant.split('/')[-1]}_s{settings.get('seed', 0)}"
    out = args.out or str(Path("results") / "train" / name)
    result = train(args.algorithm, args.plant, out, settings=settings,
                   algorithm_options=sets[args.algorithm], plant_options=sets["plant"],
                   resume=args.resume, overwrite=args.overwrite)
    _console().print(json.dumps(result), markup=False, soft_wrap=True)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ctrlbench.report import build_report

    path = build_report(args.dir, figures=not args.no_figures, on_warning=_warn("report"))
    _console().print(path.read_text(), markup=False, soft_wrap=True)
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line: ``ctrlbench run: error: ... (see ctrlbench run --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ctrlbench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
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
    r.add_argument("--options", default=None, metavar="FILE",
                   help="controller options file (.json/.toml, e.g. written by ctrlbench tune); "
                        "--set overrides it")
    r.add_argument("--out", default="results/run", help="folder for trajectory and figure")
    c = sub.add_parser("check", help="conformance checks for one or all plants")
    c.add_argument("plant", nargs="?")
    c.add_argument("--steps", type=int, default=200)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--smoke", action="store_true",
                   help="each plant on its registered smoke options (costly plants on a coarse "
                        "grid and a short control period)")
    c.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="plant option (one plant only)")
    s = sub.add_parser("study", help="run a study spec (.toml or .py); resumable")
    s.add_argument("spec")
    s.add_argument("--out", default=None, help="study folder (default results/<name>)")
    s.add_argument("--workers", type=int, default=1,
                   help="worker processes (default: 1, runs in this process)")
    s.add_argument("--steps", type=int, default=None,
                   help="override the spec's steps per run, for a quick check "
                        "(default: the spec's)")
    s.add_argument("--overwrite", action="store_true",
                   help="move a previous study in the folder aside to <folder>.old-<time> and "
                        "start afresh (default: resume the same spec, refuse another)")
    s.add_argument("--backend", default="local", choices=("local", "ray"),
                   help="local process pool (default) or Ray tasks (needs ctrlbench[ray])")
    s.add_argument("--address", default=None,
                   help="Ray cluster address (auto, ray://host:10001); default: start a local "
                        "Ray for the study")
    s.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="wall-clock limit per run; a run past it is recorded as failed "
                        "(default: the spec's timeout_s, else none)")
    from ctrlbench.tune_cli import add_tune_parser

    add_tune_parser(sub)
    t = sub.add_parser("train", help="train a learned controller (sac, td3, ppo, sindy-rl) on a "
                       "plant; resumable")
    t.add_argument("algorithm")
    t.add_argument("plant", help="a ctrlbench plant id, or another gymnasium id (Pendulum-v1)")
    t.add_argument("--steps", type=int, default=None, help="environment steps in total")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--out", default=None,
                   help="run folder (default results/train/<algo>_<plant>_s<seed>)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="training setting, algorithm or plant option (train.KEY, <algo>.KEY, "
                        "plant.KEY to be explicit)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint")
    t.add_argument("--overwrite", action="store_true",
                   help="move a previous run in --out aside to <out>.old-<time>")
    t.add_argument("--progress", action="store_true", help="show a progress bar")
    rp = sub.add_parser("report", help="markdown report of a study folder")
    rp.add_argument("dir")
    rp.add_argument("--no-figures", action="store_true")
    for name in _plugin_commands():
        sub.add_parser(name, help=f"plugin command (ctrlbench {name} --help)", add_help=False)
    return p


def _cmd_tune(args: argparse.Namespace) -> int:
    from ctrlbench.tune_cli import cmd_tune

    return cmd_tune(args)


_COMMANDS = {
    "tune": _cmd_tune,
    "list": _cmd_list,
    "run": _cmd_run,
    "check": _cmd_check,
    "study": _cmd_study,
    "report": _cmd_report,
    "train": _cmd_train,
}


def _plugin_commands() -> dict[str, Any]:
    """Sub-commands other packages register in the ``ctrlbench.cli`` entry-point group."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group="ctrlbench.cli")}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ctrlbench`` command; returns the exit status.

    Bad input exits 2 with a one-line message; SIGINT / SIGTERM exit 130 / 143 with a message
    (work finished so far is kept: studies and ``llm train`` resume from it).
    """
    from ctrlbench.interrupt import exit_status, handle_signals, raise_if_interrupted
    from ctrlbench.runfolder import RunFolderError
    from ctrlbench.study_pool import StudyWorkerError
    from ctrlbench.study_ray import MissingExtraError

    argv = list(sys.argv[1:] if argv is None else argv)
    plugins = _plugin_commands()
    command = argv[0] if argv and argv[0] in (*_COMMANDS, *plugins) else ""
    prog = f"ctrlbench {command}" if command else "ctrlbench"
    unraisable = sys.unraisablehook
    sys.unraisablehook = _quiet_interrupts(unraisable)
    try:
        with handle_signals():
            try:
                if argv and argv[0] in plugins:
                    status = int(plugins[argv[0]].load()(argv[1:]))
                else:
                    args = _parser().parse_args(argv)
                    status = _COMMANDS[args.command](args)
            except Exception:
                raise_if_interrupted()  # the error is the aftermath of a swallowed signal
                raise
            raise_if_interrupted()  # a signal swallowed late (in a finalizer, a solver)
            return status
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except MissingExtraError as exc:
        print(f"{prog}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        status = exit_status(exc)
        print(f"\n{prog}: interrupted ({'SIGTERM' if status == 143 else 'SIGINT'}); "
              f"finished work is kept, rerun the same command to resume", file=sys.stderr)
        return status
    except (KeyError, TypeError, ValueError, RunFolderError, StudyWorkerError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"{prog}: error: {_one_line(msg)}", file=sys.stderr)
        return 2
    except PermissionError as exc:
        print(f"{prog}: error: permission denied: {exc.filename or _one_line(exc)}",
              file=sys.stderr)
        return 2
    except OSError as exc:  # FileNotFoundError, a full disk, a read-only file system, ...
        msg = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else exc
        print(f"{prog}: error: {_one_line(msg)}", file=sys.stderr)
        return 2
    finally:
        sys.unraisablehook = unraisable


def _quiet_interrupts(hook: Any) -> Any:
    """An unraisable-exception hook that stays silent about an interrupt raised inside a
    finalizer (``__del__``): the signal stays pending and ends the command at the next check,
    with its message, instead of printing a traceback."""

    def quiet(unraisable: Any) -> None:
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            hook(unraisable)

    return quiet


if __name__ == "__main__":
    sys.exit(main())
