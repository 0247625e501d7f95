"""Entropy tracking: set-points x tasks x controllers on real GRPO runs (issue 13, item 5).

Question: which entropy controller holds the policy's token entropy at its set-point H* during
GRPO, and how does held-out performance depend on the entropy it is held at (AEPO's claim:
pass@k first rises, then falls with entropy)?

Grid: set-points ``--setpoints`` (0.3, 0.6, 0.9) x tasks ``--tasks`` (sumpair, countdown-lite) x
controllers ``--controllers`` (:mod:`llm_rl.tracking`: open loop, the hand-tuned PI, PI by pole
placement on the identified model, the same reading the Kalman-filtered entropy, PI tuned by
Optuna on the model, MPC on the identified quadratic model, the fixed dual ascent, AEPO) x
seeds ``--seeds`` (held out: the models were identified and the MPC settings chosen on seeds
10-12, the hand PI tuned on seed 1). Sizes are the collapse study's CPU
reduced size (2x64 GPT-2, SFT 300 steps, 120 steps x 16 prompts x 8 samples, held-out evaluation
of 32 problems x 8 samples every 10 steps).

Per run: mean ``|H - H*| / H*`` over the second half, of the raw per-step entropy and of the
identified model's Kalman estimate (:func:`llm_rl.tracking.tracking_summary`), entropy at the
start / end, the bonus's mean over the second half, training reward at the end and held-out
pass@1 / pass@8 (last evaluation and mean over the second half's evaluations).

Needs the identified models ``model_<task>_arx.json`` of ``studies/llm_entropy_sysid.py`` in
``--sysid_dir``.

Output (``--out_dir``): ``<task>/h<H*>/<controller>-s<seed>/`` run directories (a
``summary.json`` stamped with the config hash: a rerun reuses finished runs and resumes
unfinished ones), ``results.md`` / ``results.json`` (written atomically), ``tracking.png``
(H(t) and the actuator per set-point and task) and ``passk_vs_setpoint.png``.

Run:
- ``python studies/llm_entropy_tracking.py --smoke --sysid_dir DIR``: seconds (run by the tests).
- CPU reduced size: ``OMP_NUM_THREADS=1 python studies/llm_entropy_tracking.py
  --sysid_dir results/llm_entropy_sysid`` (48 runs per seed, ~15-25 s each on one core).
- GPU full size: add ``--device cuda --n_layer 4 --n_embd 256 --steps 300 --prompts_per_step 64
  --fast_rollout true`` (not yet run).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from ctrlbench.io import optional_pyplot, save_figure
from ctrlbench.options import Options, option
from llm_rl.config import SFTConfig, TrainConfig
from llm_rl.entropy_control import ControlConfig
from llm_rl.filters import SensorConfig
from llm_rl.losses import LossConfig
from llm_rl.policy import PolicySpec
from llm_rl.study_runs import parse_study_args, train_or_reuse, write_results
from llm_rl.tasks import make_task
from llm_rl.tracking import (
    TRACKING_CONTROLLERS,
    IdentifiedModel,
    load_identified,
    tracking_controls,
    tracking_summary,
)

#: ``--smoke`` sizes (flags given explicitly win).
SMOKE: dict[str, Any] = {"steps": 4, "prompts_per_step": 4, "group_size": 4, "n_layer": 1,
                         "n_embd": 32, "eval_size": 4, "eval_every": 2, "sft_steps": 20,
                         "setpoints": "0.6", "tasks": "sumpair", "n_trials": 4,
                         "out_dir": "results/llm_entropy_tracking_smoke"}
DEFAULT_CONTROLLERS = "open-loop,hand-pi,pole,pole-kf,optuna,nmpc,dual-fixed,aepo"
#: A run "held" its set-point for the pass@k-vs-set-point question when its raw error is at most
#: this (the question is about the entropy level, not about the last percent of tracking).
NEAR = 0.25


@dataclass(frozen=True)
class Args(Options):
    """Study settings (``--smoke`` overrides the sizes in SMOKE)."""

    tasks: str = option("sumpair,countdown-lite", "Comma-separated tasks.")
    setpoints: str = option("0.3,0.6,0.9", "Comma-separated set-points H* (nats, token mean).")
    controllers: str = option(DEFAULT_CONTROLLERS, "Comma-separated controllers: "
                              + ", ".join(TRACKING_CONTROLLERS) + ".")
    seeds: str = option("0", "Comma-separated seeds (held out from identification and tuning).")
    taus: str = option("3", "Pole placement: closed-loop time constants (steps).")
    n_trials: int = option(60, "Optuna trials on the identified model, per task and set-point.",
                           ge=1)
    sysid_dir: str = option("results/llm_entropy_sysid", "Folder with model_<task>_arx.json.")
    steps: int = option(120, "GRPO steps per run.", ge=2)
    prompts_per_step: int = option(16, "Prompts per rollout.", ge=1)
    group_size: int = option(8, "Samples per prompt.", ge=1)
    n_layer: int = option(2, "Model depth.", ge=1)
    n_embd: int = option(64, "Model width.", ge=1)
    sft_steps: int = option(300, "Warm-start SFT steps.", ge=0)
    lr: float = option(1e-3, "GRPO learning rate (collapse-prone setting of LLM_RL.md).", gt=0)
    eval_every: int = option(10, "Held-out evaluation period (steps).", ge=1)
    eval_size: int = option(32, "Held-out problems per evaluation (x 8 samples).", ge=1)
    device: str = option("cuda" if torch.cuda.is_available() else "cpu", "Torch device.")
    fast_rollout: bool = option(False, "Static-cache (+ CUDA graph) sampling.")
    out_dir: str = option("results/llm_entropy_tracking", "Runs, records and the report.")
    sft_dir: str = option("", "Warm-start cache (default: <out_dir>/sft).")
    smoke: bool = option(False, "Seconds-long CPU version: the smoke sizes above.")
    threads: int = option(1, "torch CPU threads.", ge=1)


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> Args:
    """Flags generated from :class:`Args` (booleans take true/false; bare ``--smoke`` = true)."""
    args = parse_study_args(Args, (__doc__ or "").splitlines()[0], argv, SMOKE)
    for c in args.controllers.split(","):
        if c not in TRACKING_CONTROLLERS:
            raise KeyError(f"unknown controller {c!r}; valid: {', '.join(TRACKING_CONTROLLERS)}")
    for h in _floats(args.setpoints):
        if not 0 < h < 5:
            raise ValueError(f"set-point {h!r} is out of range; valid: 0 < H* < 5 nats")
    return args


def train_config(task: str, name: str, seed: int, setpoint: float, control: ControlConfig,
                 sensor: SensorConfig, args: Args) -> TrainConfig:
    """One reduced-size run, in ``<out_dir>/<task>/h<H*>/<name>-s<seed>``."""
    return TrainConfig(
        task=task, policy=PolicySpec(n_layer=args.n_layer, n_embd=args.n_embd, n_head=4),
        sft=SFTConfig(steps=args.sft_steps), sft_dir=args.sft_dir or f"{args.out_dir}/sft",
        steps=args.steps, prompts_per_step=args.prompts_per_step, group_size=args.group_size,
        lr=args.lr, minibatches=2, loss=LossConfig(), control=control, sensor=sensor,
        eval_every=args.eval_every, eval_size=args.eval_size,
        checkpoint_every=max(args.steps // 2, 1), seed=seed, device=args.device,
        fast_rollout=args.fast_rollout, tensorboard=False,
        out_dir=f"{args.out_dir}/{task}/h{setpoint:g}/{name}-s{seed}",
    )


def _history(args: Args, task: str, setpoint: float, name: str, seed: int
             ) -> list[dict[str, Any]]:
    path = Path(args.out_dir) / task / f"h{setpoint:g}" / f"{name}-s{seed}" / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x]


def run_task(task: str, model: IdentifiedModel, args: Args) -> list[dict[str, Any]]:
    """Every (set-point, controller, seed) run of one task; their summaries."""
    rows = []
    storage = f"sqlite:///{Path(args.out_dir).resolve()}/optuna.db"
    for h in _floats(args.setpoints):
        controls = tracking_controls(args.controllers.split(","), h, model,
                                     taus=_floats(args.taus), n_trials=args.n_trials,
                                     storage=storage, study_prefix=f"{task}-h{h:g}",
                                     task=task)
        for name, (control, sensor) in controls.items():
            for seed in (int(s) for s in args.seeds.split(",") if s.strip()):
                cfg = train_config(task, name, seed, h, control, sensor, args)
                r = train_or_reuse(cfg, lambda hist, h=h: tracking_summary(hist, h, model.kalman),
                                   task=task, setpoint=h, controller=name, seed=seed,
                                   gains=_gains(control))
                rows.append(r)
                print(f"{task:15s} H*={h:g} {name:14s} s{seed} err {r['rel_err_second_half']:.3f}"
                      f" (filtered {r['rel_err_filtered']:.3f}) H_end {r['entropy_end']:.3f} "
                      f"pass@1 late {r['pass@1_late']:.3f} ({r['wall_s']:.1f}s)", flush=True)
    return rows


def _gains(control: ControlConfig) -> dict[str, float]:
    o = control.options
    return {k: float(getattr(o, k)) for k in ("kp", "ki", "lr", "kp_log") if hasattr(o, k)}


def _mean(values: list[float]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{np.mean(vals):.3f} +- {np.std(vals, ddof=1):.3f}"


def report(args: Args, rows: list[dict[str, Any]]) -> str:
    """Markdown: one row per (task, set-point, controller), mean +- std over seeds; the best
    controller per (task, set-point); pass@k against the set-point; draws the figures."""
    seeds = args.seeds
    lines = [f"{args.steps} steps x {args.prompts_per_step} prompts x {args.group_size} samples; "
             f"model {args.n_layer}x{args.n_embd}; {args.sft_steps} SFT steps; held-out "
             f"{args.eval_size} problems x 8 samples every {args.eval_every} steps; seeds "
             f"{seeds}; device {args.device}; models from {args.sysid_dir}", "",
             "| task | H* | controller | err raw (2nd half) | err filtered | H end | actuator mean "
             "(2nd half; AEPO: temperature) | reward end | pass@1 late | pass@8 late |",
             "|" + "---|" * 10]
    keys = list(dict.fromkeys((r["task"], r["setpoint"], r["controller"]) for r in rows))
    for task, h, name in keys:
        rs = [r for r in rows if (r["task"], r["setpoint"], r["controller"]) == (task, h, name)]
        cells = [_mean([r[k] for r in rs]) for k in (
            "rel_err_second_half", "rel_err_filtered", "entropy_end", "actuator_mean",
            "reward_end", "pass@1_late", "pass@8_late")]
        lines.append(f"| {task} | {h:g} | {name} | " + " | ".join(cells) + " |")
    lines += ["", "Best controller (raw error) per task and set-point:"]
    for task in dict.fromkeys(r["task"] for r in rows):
        for h in dict.fromkeys(r["setpoint"] for r in rows if r["task"] == task):
            rs = [r for r in rows if r["task"] == task and r["setpoint"] == h]
            by: dict[str, list[float]] = {}
            for r in rs:
                by.setdefault(r["controller"], []).append(r["rel_err_second_half"])
            best = min(by, key=lambda n: float(np.mean(by[n])))
            ok = "within" if np.mean(by[best]) <= 0.10 else "NOT within"
            lines.append(f"- {task}, H* = {h:g}: {best} {np.mean(by[best]):.3f} ({ok} 10 %)")
    lines += ["", f"Held-out pass@1 / pass@8 (late) against the set-point: mean +- std over the "
              f"runs whose entropy was held near it (raw error <= {NEAR:g}; n runs), open "
              f"loop for reference:"]
    for task in dict.fromkeys(r["task"] for r in rows):
        note = "" if make_task(task).exclude_heldout else " (training prompts: not held out)"
        pts = []
        for h in dict.fromkeys(r["setpoint"] for r in rows if r["task"] == task):
            held = [r for r in rows if r["task"] == task and r["setpoint"] == h
                    and r["controller"] != "open-loop" and r["rel_err_second_half"] <= NEAR]
            p1 = _mean([r["pass@1_late"] for r in held])
            p8 = _mean([r["pass@8_late"] for r in held])
            pts.append(f"H* {h:g}: {p1} / {p8} (n = {len(held)})")
        first = next(r["setpoint"] for r in rows if r["task"] == task)  # the same run at each H*
        ol = [r for r in rows if r["task"] == task and r["controller"] == "open-loop"
              and r["setpoint"] == first]
        if ol:
            pts.append(f"open loop (H end {_mean([r['entropy_end'] for r in ol])}): "
                       f"{_mean([r['pass@1_late'] for r in ol])} / "
                       f"{_mean([r['pass@8_late'] for r in ol])}")
        lines.append(f"- {task}{note}: " + "; ".join(pts))
    _plot(args, rows)
    return "\n".join(lines) + "\n"


def _plot(args: Args, rows: list[dict[str, Any]]) -> None:
    plt = optional_pyplot()
    if plt is None:
        return
    panels = list(dict.fromkeys((r["task"], r["setpoint"]) for r in rows))
    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 2.8 * len(panels)), squeeze=False)
    for i, (task, h) in enumerate(panels):
        for r in (r for r in rows if (r["task"], r["setpoint"]) == (task, h)):
            hist = _history(args, task, h, r["controller"], r["seed"])
            steps = [m["step"] for m in hist]
            label = f"{r['controller']} s{r['seed']}"
            axes[i][0].plot(steps, [m["entropy"] for m in hist], lw=0.9, label=label)
            axes[i][1].plot(steps, [m["actuator"] for m in hist], lw=0.9, label=label)
        axes[i][0].axhline(h, color="k", ls=":", lw=0.8)
        axes[i][0].set_title(f"{task}, H* = {h:g}: entropy (raw)")
        axes[i][1].set_title(f"{task}, H* = {h:g}: actuator (bonus; AEPO: temperature)")
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, Path(args.out_dir) / "tracking.png", dpi=80)
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(5 * len(tasks), 3.4), squeeze=False)
    for j, task in enumerate(tasks):
        rs = [r for r in rows if r["task"] == task]
        for key, marker in (("pass@1_late", "o"), ("pass@8_late", "s")):
            axes[0][j].scatter([r["entropy_end"] for r in rs], [r[key] for r in rs],
                               marker=marker, s=14, label=key)
        axes[0][j].set_xlabel("entropy at the end (nats)")
        axes[0][j].set_title(f"{task}: held-out pass@k vs entropy")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, Path(args.out_dir) / "passk_vs_setpoint.png", dpi=80)


def main(argv: list[str] | None = None) -> int:
    """Run the grid, then write results.md, results.json and the figures."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    models = {t: load_identified(Path(args.sysid_dir) / f"model_{t}_arx.json")
              for t in args.tasks.split(",")}
    t0 = time.perf_counter()
    rows = [r for t in args.tasks.split(",") for r in run_task(t, models[t], args)]
    text = write_results(args.out_dir, args.to_dict(), rows, report(args, rows))
    print(text)
    print(f"total {time.perf_counter() - t0:.1f}s -> {args.out_dir}/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
