"""``ctrlbench llm ...``: train, warm-start and list, with flags generated from the configs.

Every field of :class:`~llm_rl.config.TrainConfig` is a flag, its help the field's one-line doc
and default; nested configs use dotted names (``--loss.name clip-cov --control.name pid
--control.setpoint 0.6``). The options of the chosen loss / entropy controller are flags too
(``--loss.clip_cov_ratio 0.02``, ``--control.kp 1.0``): one per field of any registered entry's
options class, and a flag the chosen entry does not take is an error naming the entry and its
options. ``sft`` takes only the flags the warm start reads. Exit codes: 0 success, 2 bad
arguments or names, 3 non-finite loss (the last good checkpoint is kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from collections.abc import Callable
from typing import Any

__all__ = ["build_parser", "main"]

#: ``TrainConfig`` fields whose ``options`` come from a registry: section -> registry.
_REGISTRIES = {"loss": ("llm_rl.losses", "LOSSES"),
               "control": ("llm_rl.entropy_control", "ENTROPY_CONTROLLERS")}
#: Top-level ``TrainConfig`` fields the ``sft`` command reads.
_SFT_FIELDS = ("task", "policy", "sft", "sft_dir", "seed", "device")


def _registry(section: str) -> Any:
    import importlib

    module, attr = _REGISTRIES[section]
    return getattr(importlib.import_module(module), attr)



def _converter(tp: Any) -> Callable[[str], Any]:
    """Text -> value for a field of type ``tp``; the config itself checks type and range."""
    from ctrlbench.options import parse_bool, parse_value

    if tp is str:
        return str
    if tp is bool:
        return parse_bool
    return parse_value


def _type_name(tp: Any) -> str:
    from ctrlbench.options import _type_name as name

    return name(tp).upper().replace(" ", "")


def _help(text: str) -> str:
    return text.replace("%", "%%")  # argparse %-formats help strings


def _add_registry_flags(parser: argparse.ArgumentParser, section: str, taken: set[str]) -> None:
    """One ``--<section>.<field>`` per field of any registered entry's options class."""
    from ctrlbench.options import describe

    reg = _registry(section)
    rows: dict[str, list[tuple[str, Any, str, str]]] = {}
    for name in reg.names():
        for field, tp, default, doc in describe(reg.options(name)):
            rows.setdefault(field, []).append((name, default, doc, tp))
    hints: dict[str, Any] = {}
    for name in reg.names():
        hints.update(typing.get_type_hints(reg.options(name)))
    for field, uses in rows.items():
        if field in taken:
            raise ValueError(f"{reg.kind} option {field!r} clashes with the {section} field")
        by_default: dict[str, list[str]] = {}
        for entry, default, _, _ in uses:
            by_default.setdefault(repr(default) if isinstance(default, str) else str(default),
                                  []).append(entry)
        if len(by_default) == 1:
            default_text = next(iter(by_default))
        else:
            default_text = ", ".join(f"{d} ({', '.join(e)})" for d, e in by_default.items())
        entries = ", ".join(e for e, *_ in uses)
        parser.add_argument(
            f"--{section}.{field}", dest=f"{section}.{field}", type=_converter(hints[field]),
            default=None, metavar=uses[0][3].upper().replace(" ", ""),
            help=_help(f"{uses[0][2]} [{section}.name: {entries}] (default: {default_text})"),
        )


def _add_fields(parser: argparse.ArgumentParser, cls: Any, prefix: str = "",
                only: tuple[str, ...] | None = None) -> None:
    """A flag per field of the options dataclass ``cls`` (nested ones with dotted names)."""
    from ctrlbench.options import Options

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if only is not None and f.name not in only:
            continue
        name, tp = prefix + f.name, hints[f.name]
        if isinstance(tp, type) and issubclass(tp, Options):
            _add_fields(parser, tp, name + ".")
            continue
        if f.name == "options" and prefix[:-1] in _REGISTRIES:
            _add_registry_flags(parser, prefix[:-1],
                                {g.name for g in dataclasses.fields(cls)})
            continue
        doc = f.metadata.get("doc", "")
        parser.add_argument(f"--{name}", dest=name, type=_converter(tp), default=None,
                            metavar=_type_name(tp), help=_help(f"{doc} (default: {f.default})"))


def _config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`TrainConfig` of the given flags (unset flags keep the defaults).

    A ``--loss.*`` / ``--control.*`` option flag the chosen entry does not take raises
    :class:`~ctrlbench.options.OptionError` naming the entry and its options.
    """
    from ctrlbench.options import OptionError
    from llm_rl.config import TrainConfig, config_from_dict

    data: dict[str, Any] = dataclasses.asdict(TrainConfig())
    for section in _REGISTRIES:
        data[section]["options"] = {}  # the chosen entry's defaults, plus the flags given
    for key, value in vars(args).items():
        if value is None or key in ("command", "resume"):
            continue
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        if parents and parents[-1] in _REGISTRIES and leaf not in node:
            node["options"][leaf] = value
        else:
            node[leaf] = value
    for section in _REGISTRIES:
        reg, name = _registry(section), data[section]["name"]
        if name not in reg:
            reg.entry(name)  # KeyError listing the valid names
        valid = [f.name for f in dataclasses.fields(reg.options(name))]
        wrong = [k for k in data[section]["options"] if k not in valid]
        if wrong:
            users = [n for n in reg.names() if wrong[0] in
                     {f.name for f in dataclasses.fields(reg.options(n))}]
            raise OptionError(
                f"--{section}.{wrong[0]} does not apply to {reg.kind} {name!r} (it is an option "
                f"of {', '.join(users)}); options of {name!r}: "
                + (", ".join(f"--{section}.{v}" for v in valid) or "none")
            )
    return config_from_dict(data)


def build_parser() -> argparse.ArgumentParser:
    """The ``llm`` argument parser (``train``, ``sft``, ``list``)."""
    from llm_rl.config import TrainConfig

    parser = argparse.ArgumentParser(prog="ctrlbench llm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="run GRPO with an entropy controller",
                           description="Run GRPO with an entropy controller.")
    _add_fields(train, TrainConfig)
    train.add_argument("--resume", action="store_true",
                       help="continue from out_dir/checkpoint.pt (default: false)")
    sft = sub.add_parser("sft", help="build (or reuse) the SFT warm-start checkpoint",
                         description="Build (or reuse) the cached SFT warm-start checkpoint.")
    _add_fields(sft, TrainConfig, only=_SFT_FIELDS)
    sub.add_parser("list", help="list tasks, losses and entropy controllers (with options)",
                   description="List tasks, losses, entropy controllers and actuators.")
    return parser


def _train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from llm_rl.trainer import GRPOTrainer

    cfg = _config_from_args(args)
    trainer = GRPOTrainer(cfg, resume=args.resume, progress=True)
    columns = (TextColumn("[bold]GRPO[/]"), BarColumn(),
               TextColumn("{task.completed}/{task.total}"), TextColumn("{task.fields[info]}"),
               TimeRemainingColumn())
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("grpo", total=cfg.steps, completed=trainer.step, info="")

        def on_step(m: dict[str, Any]) -> None:
            act = f"{m['actuator_name']}={m['actuator']:.3g}"
            info = f"H={m['entropy']:.3f} R={m['reward']:.3f} {act}"
            bar.update(task, advance=1, info=info)

        trainer.train(on_step=on_step)
    last = trainer.history[-1] if trainer.history else {}
    summary = {k: last.get(k) for k in ("step", "entropy", "reward", "pass@1", "rh_r2")}
    print(json.dumps({"out_dir": cfg.out_dir, **summary}))
    return 0


def _sft(args: argparse.Namespace) -> int:
    from llm_rl.sft import warm_start

    cfg = _config_from_args(args)
    path = warm_start(cfg.task, cfg.policy, cfg.sft, cfg.sft_dir, seed=cfg.seed, device=cfg.device,
                      progress=True)
    print(json.dumps({"checkpoint": str(path), **json.loads((path / "sft.json").read_text())}))
    return 0


def _list() -> int:
    from llm_rl.entropy_control import ACTUATORS, ENTROPY_CONTROLLERS
    from llm_rl.losses import LOSSES
    from llm_rl.tasks import TASKS

    def entries(reg: Any) -> str:
        return "; ".join(f"{n} ({', '.join(f.name for f in dataclasses.fields(reg.options(n)))})"
                         for n in reg.names())

    print("tasks:       " + ", ".join(sorted(TASKS)))
    print("losses:      " + entries(LOSSES))
    print("controllers: " + entries(ENTROPY_CONTROLLERS))
    print("actuators:   " + ", ".join(ACTUATORS))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ctrlbench llm``; returns the exit code."""
    args = build_parser().parse_args(argv)
    from llm_rl.trainer import NonFiniteLossError

    try:
        if args.command == "train":
            return _train(args)
        if args.command == "sft":
            return _sft(args)
        return _list()
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (KeyError, ValueError, TypeError, FileNotFoundError) as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
