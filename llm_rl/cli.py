"""``ctrlbench llm ...``: train, warm-start, list and sample, with flags generated from the configs.

``sample --init <policy> --prompt s12: --mirostat v2 --tau 3.0`` decodes from a saved policy
under Mirostat (:mod:`llm_rl.decoding`) and prints the text and the running surprise.

Every field of :class:`~llm_rl.config.TrainConfig` is a flag, its help the field's one-line doc
and default; nested configs use dotted names (``--loss.name clip-cov --control.name pid
--control.setpoint 0.6``). The options of the chosen loss / entropy controller are flags too
(``--loss.clip_cov_ratio 0.02``, ``--control.kp 1.0``): one per field of any registered entry's
options class, and a flag the chosen entry does not take is an error naming the entry and its
options. ``sft`` takes only the flags the warm start reads.

``train`` writes one run per ``out_dir`` (config.json, metrics.jsonl, checkpoint.pt,
tensorboard/, policy/): a new run refuses a folder that holds one; ``--overwrite`` moves the old
run aside to ``<out_dir>.old-<time>``; ``--resume`` continues it from its checkpoint (steps,
device and tensorboard may change); a second writer is refused with the holder's pid; a damaged
checkpoint or log is moved to ``<out_dir>/quarantine/`` and the error says what to do. SIGINT /
SIGTERM finish the current step, save a checkpoint of it and exit 130 / 143 (a second signal
stops at once); ``--resume`` then continues to the same result as an uninterrupted run.

Exit codes: 0 success, 2 bad arguments, names, values or folders (one ``error:`` line), 3
non-finite loss (the last good checkpoint is kept), 130 / 143 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import re
import sys
import typing
import warnings
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
        if value is None or key in ("command", "resume", "overwrite"):
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


_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|nan|infinity)$", re.I)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (plus a close flag name, when there is
    one), not the usage of every flag."""

    #: The other sub-commands' parsers, to say where a flag belongs (set by build_parser).
    siblings: dict[str, argparse.ArgumentParser]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Values such as -1e-3, -inf and -nan are values, not flags (argparse's own pattern
        # only knows -1 and -.5).
        self._negative_number_matcher = _NUMBER

    def error(self, message: str) -> typing.NoReturn:
        hint = ""
        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        if unknown:
            flag = unknown.group(1).split("=", 1)[0]
            owners = [p.prog for p in getattr(self, "siblings", {}).values()
                      if flag in p._option_string_actions]
            close = difflib.get_close_matches(flag, list(self._option_string_actions), n=1)
            if owners:
                hint = f" ({flag} is a flag of {', '.join(owners)})"
            elif close:
                hint = f" (did you mean {close[0]}?)"
        self.exit(2, f"{self.prog}: error: {_printable(message)}{hint}; see {self.prog} "
                     f"--help\n")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    """Parse ``argv``; an unknown flag is reported by the sub-command it was given to."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        subs.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def build_parser() -> argparse.ArgumentParser:
    """The ``llm`` argument parser (``train``, ``sft``, ``list``, ``sample``)."""
    from llm_rl.config import TrainConfig

    parser = _Parser(prog="ctrlbench llm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="run GRPO with an entropy controller",
                           description="Run GRPO with an entropy controller. out_dir holds one "
                           "run: a new run refuses a folder that holds one unless --overwrite "
                           "moves it aside; --resume continues it.")
    _add_fields(train, TrainConfig)
    train.add_argument("--resume", action="store_true",
                       help="continue the run in out_dir from its checkpoint.pt (default: false)")
    train.add_argument("--overwrite", action="store_true",
                       help="start a new run even if out_dir holds one: the old run is moved "
                       "aside to <out_dir>.old-<time> (default: false)")
    sft = sub.add_parser("sft", help="build (or reuse) the SFT warm-start checkpoint",
                         description="Build (or reuse) the cached SFT warm-start checkpoint.")
    _add_fields(sft, TrainConfig, only=_SFT_FIELDS)
    listing = sub.add_parser("list", help="list tasks, losses and entropy controllers (with "
                             "options)",
                             description="List tasks, losses, entropy controllers and actuators.")
    sample = sub.add_parser("sample", help="sample from a saved policy, optionally under Mirostat",
                            description="Sample a continuation from a saved policy (plain, or "
                            "Mirostat v1/v2 feedback on the surprise); prints the text and the "
                            "running surprise.")
    _add_sample_flags(sample)
    commands = {"train": train, "sft": sft, "list": listing, "sample": sample}
    for name, p in commands.items():
        p.siblings = {k: v for k, v in commands.items() if k != name}  # type: ignore[attr-defined]
    return parser


def _add_sample_flags(parser: argparse.ArgumentParser) -> None:
    from llm_rl.decoding import MirostatOptions

    d = MirostatOptions()
    parser.add_argument("--init", required=True, help="saved policy directory (a run's policy/ "
                        "or an SFT checkpoint)")
    parser.add_argument("--prompt", default="", help="prompt text (default: empty)")
    parser.add_argument("--max_new_tokens", type=int, default=64,
                        help="tokens to generate at most (default: 64)")
    parser.add_argument("--mirostat", default="off", help="off, v1 or v2 (default: off)")
    parser.add_argument("--tau", type=float, default=d.tau,
                        help=f"Mirostat target surprise, bits (default: {d.tau})")
    parser.add_argument("--eta", type=float, default=d.eta,
                        help=f"Mirostat learning rate (default: {d.eta})")
    parser.add_argument("--m", type=int, default=d.m,
                        help=f"Mirostat v1: top probabilities for the Zipf fit (default: {d.m})")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="sampling temperature (default: 1.0)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")


def _sample(args: argparse.Namespace) -> int:
    import torch

    from llm_rl.decoding import MIROSTAT_MODES, MirostatOptions, sample_text
    from llm_rl.policy import load_policy
    from llm_rl.validation import MAX_TEMPERATURE, MIN_TEMPERATURE, check_device

    if args.mirostat not in ("off", *MIROSTAT_MODES):
        raise ValueError(f"--mirostat = {args.mirostat!r}; valid: off, {', '.join(MIROSTAT_MODES)}")
    if not 1 <= args.max_new_tokens <= 100_000:
        raise ValueError(f"--max_new_tokens = {args.max_new_tokens}; valid: 1 .. 100000")
    if not MIN_TEMPERATURE <= args.temperature <= MAX_TEMPERATURE:
        raise ValueError(f"--temperature = {args.temperature}; valid: {MIN_TEMPERATURE} .. "
                         f"{MAX_TEMPERATURE}")
    if not 0 <= args.seed < 2**32:
        raise ValueError(f"--seed = {args.seed}; valid: 0 .. {2**32 - 1}")
    opts = None if args.mirostat == "off" else MirostatOptions(
        mode=args.mirostat, tau=args.tau, eta=args.eta, m=args.m)
    check_device(args.device)
    model, tok = load_policy(args.init, device=args.device)
    missing = tok.missing(args.prompt)
    if missing:
        raise ValueError(f"--prompt has characters {missing!r} the policy's tokenizer lacks "
                         f"(its characters: {tok.chars!r})")
    conf = model.config
    room = int(getattr(conf, "n_positions", None) or conf.max_position_embeddings)
    need = 1 + len(args.prompt) + args.max_new_tokens
    if need > room:
        raise ValueError(f"--max_new_tokens = {args.max_new_tokens} is too many: <bos>, the "
                         f"prompt and the new tokens need {need} positions, the policy has "
                         f"{room}; valid: <= {room - 1 - len(args.prompt)}")
    gen = torch.Generator(device=args.device).manual_seed(args.seed)
    res = sample_text(model, tok, args.prompt, max_new_tokens=args.max_new_tokens, options=opts,
                      temperature=args.temperature, generator=gen)
    print(f"text: {_printable(args.prompt)}|{_printable(res.text)}")
    run = res.running_mean()
    for i, (t, s, r) in enumerate(zip(res.tokens, res.surprise, run)):
        print(f"{i:4d} {_printable(tok.decode([t])) or '<eos>':>6s} surprise {s:6.3f} bits  "
              f"running mean {r:6.3f}")
    mode = "plain sampling" if opts is None else f"mirostat {opts.mode}, tau {opts.tau}"
    print(f"mean surprise {run[-1] if run else float('nan'):.3f} bits over {len(run)} tokens "
          f"({mode})")
    return 0


def _train(args: argparse.Namespace) -> int:
    from llm_rl.validation import check_device

    cfg = _config_from_args(args)
    check_device(cfg.device)
    return _run_train(cfg, resume=args.resume, overwrite=args.overwrite)


def _run_train(cfg: Any, *, resume: bool, overwrite: bool) -> int:
    """Train with a progress bar; on SIGINT / SIGTERM say what was saved and how to go on."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from ctrlbench.interrupt import exit_status
    from llm_rl.trainer import GRPOTrainer

    trainer = None
    try:
        trainer = GRPOTrainer(cfg, resume=resume, overwrite=overwrite, progress=True)
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
    except KeyboardInterrupt as exc:
        print(f"\nctrlbench llm train: {_interrupted(exc, cfg, trainer, resume)}",
              file=sys.stderr)
        return exit_status(exc)
    last = trainer.history[-1] if trainer.history else {}
    summary = {k: last.get(k) for k in ("step", "entropy", "reward", "pass@1", "rh_r2")}
    print(json.dumps({"out_dir": cfg.out_dir, **summary}))
    return 0


def _interrupted(exc: BaseException, cfg: Any, trainer: Any, resume: bool) -> str:
    """What an interrupt of ``llm train`` left behind and the command that goes on from it."""
    from ctrlbench.interrupt import exit_status

    what = "SIGTERM" if exit_status(exc) == 143 else "SIGINT"
    again = "run the same command again" if resume else \
        "continue with the same command plus --resume"
    if trainer is None:
        if resume:
            return f"interrupted ({what}) while setting up; the run is unchanged: {again}"
        return (f"interrupted ({what}) while setting up, before training; run the same command "
                f"again (add --overwrite if {cfg.out_dir} now holds files)")
    saved = trainer.checkpoint_step
    if saved is None:
        return (f"interrupted ({what}) before the first checkpoint; start again with "
                f"--overwrite")
    return (f"interrupted ({what}); the run in {cfg.out_dir} is saved at step {saved} of "
            f"{cfg.steps}: {again}")


def _sft(args: argparse.Namespace) -> int:
    from llm_rl.validation import check_device

    cfg = _config_from_args(args)
    check_device(cfg.device)
    return _run_sft(cfg)


def _run_sft(cfg: Any) -> int:
    from llm_rl.sft import warm_start

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


def _printable(text: str) -> str:
    """``text`` with control characters escaped (``\\r``, ``\\x00``): one line on a terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _one_line(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return _printable(" ".join(str(text).split())) or type(exc).__name__


def _notes_as_lines(previous: Any) -> Any:
    """A ``warnings.showwarning`` that prints run notes as one ``note:`` line each and hands
    every other warning to ``previous``."""
    from llm_rl.rundir import RunNote

    def show(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, RunNote):
            print(f"ctrlbench llm: note: {_printable(str(message))}", file=sys.stderr)
        else:
            previous(message, category, *args, **kwargs)

    return show


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``ctrlbench llm`` (and ``python -m llm_rl.cli``); returns the exit code.

    Bad flags, names, values or folders exit 2 with one ``error:`` line; a non-finite loss
    exits 3; SIGINT / SIGTERM exit 130 / 143 after saying what was saved.
    """
    from ctrlbench.interrupt import exit_status, handle_signals

    try:
        args = _parse(argv)
    except SystemExit as exc:  # --help, or a bad flag (the parser printed one line)
        return exc.code if isinstance(exc.code, int) else 2
    from llm_rl.validation import NonFiniteLossError

    prefix = f"ctrlbench llm {args.command}"
    try:
        with handle_signals(), warnings.catch_warnings():
            from llm_rl.rundir import RunNote

            warnings.simplefilter("always", RunNote)
            warnings.showwarning = _notes_as_lines(warnings.showwarning)
            if args.command == "train":
                return _train(args)
            if args.command == "sft":
                return _sft(args)
            if args.command == "sample":
                return _sample(args)
            return _list()
    except KeyboardInterrupt as exc:  # outside the training loop (setup, SFT warm start)
        print(f"\n{prefix}: interrupted ({'SIGTERM' if exit_status(exc) == 143 else 'SIGINT'});"
              f" nothing was lost: run the same command again", file=sys.stderr)
        return exit_status(exc)
    except NonFiniteLossError as exc:
        print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
        return 3
    except (KeyError, ValueError, TypeError) as exc:  # RunFolderError is a ValueError
        print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{prefix}: error: out of memory: reduce prompts_per_step, group_size, eval_size "
              f"x pass_k or the policy size", file=sys.stderr)
        return 2
    except OSError as exc:  # permissions, a full disk, a path that is a file, a missing init
        text = f"cannot use {exc.filename}: {exc.strerror}" if exc.strerror and exc.filename \
            else _one_line(exc)
        print(f"{prefix}: error: {text}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        if not re.search(r"out of memory|can't allocate memory", str(exc)):
            raise
        print(f"{prefix}: error: out of memory ({_one_line(exc)[:120]}): reduce "
              f"prompts_per_step, group_size, eval_size x pass_k or the policy size",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
