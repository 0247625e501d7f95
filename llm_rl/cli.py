"""``ctrlbench llm ...``: train, warm-start and list, with flags generated from the configs.

Every field of :class:`~llm_rl.config.TrainConfig` is a flag; nested configs use dotted names
(``--loss.name clip-cov --control.name pid --control.setpoint 0.6``). Exit codes: 0 success,
2 bad arguments or names, 3 non-finite loss (the last good checkpoint is kept).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
from typing import Any

__all__ = ["build_parser", "main"]


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def _float_or_none(text: str) -> float | None:
    return None if text.lower() in ("none", "") else float(text)


def _field_docs(cls: Any) -> dict[str, str]:
    """The attribute docstrings of a dataclass (the string literal under each field)."""
    import ast
    import inspect
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for node, nxt in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def _add_fields(parser: argparse.ArgumentParser, cls: Any, prefix: str = "") -> None:
    docs = _field_docs(cls)
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc,operator]
        name = prefix + f.name
        if dataclasses.is_dataclass(default):
            _add_fields(parser, type(default), name + ".")
            continue
        kind: Any = _bool if isinstance(default, bool) else (
            _float_or_none if default is None else type(default)
        )
        parser.add_argument(f"--{name}", dest=name, type=kind, default=None,
                            help=f"{docs.get(f.name, '')} (default: {default})".strip())


def _config_from_args(args: argparse.Namespace) -> Any:
    from llm_rl.config import TrainConfig, config_from_dict

    data: dict[str, Any] = dataclasses.asdict(TrainConfig())
    for key, value in vars(args).items():
        if value is None or key in ("command", "resume"):
            continue
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        if leaf in node:
            node[leaf] = value
    return config_from_dict(data)


def build_parser() -> argparse.ArgumentParser:
    """The ``llm`` argument parser (``train``, ``sft``, ``list``)."""
    from llm_rl.config import TrainConfig

    parser = argparse.ArgumentParser(prog="ctrlbench llm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="run GRPO with an entropy controller")
    _add_fields(train, TrainConfig)
    train.add_argument("--resume", action="store_true", help="continue from out_dir/checkpoint.pt")
    sft = sub.add_parser("sft", help="build (or reuse) the SFT warm-start checkpoint")
    _add_fields(sft, TrainConfig)
    sub.add_parser("list", help="list tasks, losses and entropy controllers")
    return parser


def _train(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from llm_rl.trainer import GRPOTrainer

    cfg = _config_from_args(args)
    trainer = GRPOTrainer(cfg, resume=args.resume)
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
    path = warm_start(cfg.task, cfg.policy, cfg.sft, cfg.sft_dir, seed=cfg.seed, device=cfg.device)
    print(json.dumps({"checkpoint": str(path), **json.loads((path / "sft.json").read_text())}))
    return 0


def _list() -> int:
    from llm_rl.entropy_control import ACTUATORS, CONTROLLERS
    from llm_rl.losses import LOSSES
    from llm_rl.tasks import TASKS

    print("tasks:       " + ", ".join(sorted(TASKS)))
    print("losses:      " + ", ".join(LOSSES.names()))
    print("controllers: " + ", ".join(CONTROLLERS.names()))
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
