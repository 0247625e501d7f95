"""Entropy collapse under GRPO, and seven ways to act on it (issue 3).

Claim: open-loop GRPO on a tiny LM collapses policy entropy while reward rises (positive token
covariance Cov(l, A), Cui et al. 2025), following R = -a exp(H) + b. Measured at CPU size
(studies/README.md): a PID controller on the entropy bonus reduces the tracking error
mean |H - H*| / H* against the open loop, but does not hold H within 10 % of H* on sumpair; dual
ascent on log alpha, as configured, does not reduce it. Hypothesis the full GPU run tests:
closed-loop control of the bonus (PID, dual ascent) holds H near a set-point H*, where fixed
interventions (entropy bonus, Clip-Cov, KL-Cov) and AEPO's temperature switching only shift the
trajectory. sumpair has only 13 distinct prompts, so its held-out pass@k is measured on prompts
also seen in training (see ``llm_rl.tasks.SumPair``).

Methods (all from the same cached SFT warm start per task, >= 2 minibatches per rollout):
``open-loop`` (GRPO, no bonus), ``entropy-bonus`` (constant coefficient), ``clip-cov``,
``kl-cov``, ``pid`` (PI on the bonus), ``dual`` (dual ascent on log alpha), ``aepo``.
Tasks: ``sumpair`` and ``countdown-lite``. Tiny-model choices (documented, not the LLM-scale
defaults): Clip-Cov rho = 0.02 and KL-Cov kappa = 0.02 (rho 2e-4 selects one token of a few
hundred), bonus 0.05, PI kp 1.0 / ki 0.1 with the bonus limited to [0, 1] (tuned on seed 1;
the study runs seed 0), dual ascent
lr 0.15 with alpha in [1e-3, 0.15] (larger bonuses make a 2x64 model's entropy run away).

Output (``--out_dir``): ``<task>/<method>/`` run directories (metrics.jsonl, checkpoint), one
``<task>/<method>/summary.json`` per finished run (written atomically, with a hash of the run's
TrainConfig; a rerun skips finished runs whose config matches, resumes unfinished ones from their
checkpoint, and refuses a directory that holds a run with another config), ``results.md``
(table + pooled R-H fit + provenance), ``results.json`` (rows + provenance) and ``curves.png``.
``--smoke`` writes to its own default directory.

Run:
- ``python studies/llm_entropy_collapse.py --smoke``: CPU, 2x64 model, 200 SFT steps per task,
  20 steps x 8 prompts x 8 samples per method and task; < 60 s wall on 2 cores (45 s measured,
  imports included).
- full: ``python studies/llm_entropy_collapse.py --device cuda --fast_rollout true`` on one
  H100/H200: 4x256 model (~3 M parameters), 300 steps x 64 prompts x 8 samples per run, 14 runs
  (budgeted < 8 min; not yet run on a GPU).
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

import torch

from ctrlbench.io import optional_pyplot, save_figure
from ctrlbench.options import Options, option
from llm_rl.config import SFTConfig, TrainConfig
from llm_rl.entropy_control import ControlConfig, PIDOptions
from llm_rl.losses import LossConfig
from llm_rl.metrics import fit_rh_law
from llm_rl.policy import PolicySpec
from llm_rl.study_runs import parse_study_args, train_or_reuse, write_results
from llm_rl.tasks import make_task
from llm_rl.tracking import second_half_error

METHODS = ("open-loop", "entropy-bonus", "clip-cov", "kl-cov", "pid", "dual", "aepo")
#: ``--smoke`` sizes (flags given explicitly win) and its wall-time budget on 2 CPU cores.
SMOKE: dict[str, Any] = {"steps": 20, "prompts_per_step": 8, "n_layer": 2, "n_embd": 64,
                         "eval_size": 16, "eval_every": 10, "sft_steps": 200,
                         "out_dir": "results/llm_entropy_collapse_smoke"}
SMOKE_BUDGET_S = 60


@dataclass(frozen=True)
class Args(Options):
    """Study settings (``--smoke`` overrides the sizes marked below)."""

    tasks: str = option("sumpair,countdown-lite", "Comma-separated tasks.")
    methods: str = option(",".join(METHODS), "Comma-separated methods.")
    setpoint: float = option(0.6, "Target entropy H* for the closed-loop methods (nats, token "
                             "mean).", gt=0)
    steps: int = option(300, f"GRPO steps per run (smoke: {SMOKE['steps']}).", ge=1)
    prompts_per_step: int = option(64, f"Prompts per rollout (smoke: "
                                   f"{SMOKE['prompts_per_step']}).", ge=1)
    group_size: int = option(8, "Samples per prompt.", ge=1)
    n_layer: int = option(4, f"Model depth (smoke: {SMOKE['n_layer']}).", ge=1)
    n_embd: int = option(256, f"Model width (smoke: {SMOKE['n_embd']}).", ge=1)
    sft_steps: int = option(300, f"Warm-start SFT steps (smoke: {SMOKE['sft_steps']}).", ge=0)
    lr: float = option(1e-3, "GRPO learning rate (collapse-prone setting of LLM_RL.md).", gt=0)
    eval_every: int = option(10, f"Held-out evaluation period (smoke: {SMOKE['eval_every']}).",
                             ge=1)
    eval_size: int = option(64, f"Held-out problems (smoke: {SMOKE['eval_size']}).", ge=1)
    seed: int = option(0, "Seed of every run.")
    device: str = option("cuda" if torch.cuda.is_available() else "cpu", "Torch device.")
    fast_rollout: bool = option(False, "Static-cache (+ CUDA graph) sampling.")
    out_dir: str = option("results/llm_entropy_collapse", "Where runs, records and the report go "
                          f"(smoke: {SMOKE['out_dir']}).")
    sft_dir: str = option("", "Warm-start cache (default: <out_dir>/sft).")
    smoke: bool = option(False, f"CPU version under {SMOKE_BUDGET_S} s on 2 cores: the smoke "
                         "sizes above.")
    threads: int = option(1, "torch CPU threads.", ge=1)



def parse_args(argv: list[str] | None = None) -> Args:
    """Flags generated from :class:`Args`, help = doc and default (booleans take true/false,
    a bare ``--smoke`` means true)."""
    return parse_study_args(Args, __doc__.splitlines()[0], argv, SMOKE)


def method_config(method: str, args: Args) -> tuple[LossConfig, ControlConfig]:
    """Loss and controller of one method."""
    h = args.setpoint
    table: dict[str, tuple[LossConfig, ControlConfig]] = {
        "open-loop": (LossConfig(), ControlConfig(setpoint=h)),
        "entropy-bonus": (LossConfig(), ControlConfig(setpoint=h, options={"value": 0.05})),
        "clip-cov": (LossConfig(name="clip-cov", options={"clip_cov_ratio": 0.02}),
                     ControlConfig(setpoint=h)),
        "kl-cov": (LossConfig(name="kl-cov", options={"kl_cov_ratio": 0.02}),
                   ControlConfig(setpoint=h)),
        # PI gains tuned on seed 1 (the study runs seed 0), see studies/README.md; they are the
        # pid controller's defaults (kp 1.0, ki 0.1, kd 0, bonus in [0, 1])
        "pid": (LossConfig(), ControlConfig(name="pid", setpoint=h,
                                            options=PIDOptions(kp=1.0, ki=0.1, kd=0.0,
                                                               u_max=1.0))),
        "dual": (LossConfig(), ControlConfig(name="dual", setpoint=h, options={
            "value": 0.01, "lr": 0.15, "u_min": 1e-3, "u_max": 0.15})),
        "aepo": (LossConfig(), ControlConfig(name="aepo", actuator="temperature", setpoint=h)),
    }
    if method not in table:
        raise KeyError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    return table[method]


def train_config(task: str, method: str, args: Args) -> TrainConfig:
    """The :class:`TrainConfig` of one (task, method) run."""
    loss, control = method_config(method, args)
    return TrainConfig(
        task=task, policy=PolicySpec(n_layer=args.n_layer, n_embd=args.n_embd, n_head=4),
        sft=SFTConfig(steps=args.sft_steps), sft_dir=args.sft_dir or f"{args.out_dir}/sft",
        steps=args.steps, prompts_per_step=args.prompts_per_step, group_size=args.group_size,
        lr=args.lr, minibatches=2, loss=loss, control=control, eval_every=args.eval_every,
        eval_size=args.eval_size, checkpoint_every=max(args.steps // 3, 1), seed=args.seed,
        device=args.device, fast_rollout=args.fast_rollout, tensorboard=False,
        out_dir=f"{args.out_dir}/{task}/{method}",
    )


def summarize(hist: list[dict[str, Any]], setpoint: float) -> dict[str, Any]:
    """Per-run numbers: entropy start/end, tracking error, pass@k, covariance, R-H fit."""
    h = [m["entropy"] for m in hist]
    evals = [m for m in hist if m.get("evaluated")] or hist
    k = 5 if len(h) >= 10 else 1
    return {
        "entropy_start": sum(h[:k]) / k, "entropy_end": sum(h[-k:]) / k,
        "rel_err_second_half": second_half_error(h, setpoint),
        "reward_end": sum(m["reward"] for m in hist[-k:]) / k,
        "cov_mean": sum(m["cov_mean"] for m in hist) / len(hist),
        "pass@1": hist[-1]["pass@1"], "pass@8": hist[-1].get("pass@8"),
        "rh_r2": hist[-1]["rh_r2"], "steps": len(hist), "n_eval": len(evals),
    }


def run_one(task: str, method: str, args: Args) -> dict[str, Any]:
    """Train one run, or reuse its summary for this exact config
    (:func:`llm_rl.study_runs.train_or_reuse`)."""
    return train_or_reuse(train_config(task, method, args),
                          lambda h: summarize(h, args.setpoint), task=task, method=method)


def _history(args: Args, task: str, method: str) -> list[dict[str, Any]]:
    path = Path(args.out_dir) / task / method / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x]


def report(args: Args, rows: list[dict[str, Any]]) -> str:
    """Markdown table + pooled R-H fit per task; also draws curves.png when matplotlib imports."""
    head = ("| task | method | H start | H end | mean abs(H-H*)/H* (2nd half) | cov mean | "
            "reward end | pass@1 | pass@8 | R-H R^2 |\n|" + "---|" * 10)
    lines = [f"H* = {args.setpoint}; {args.steps} steps x {args.prompts_per_step} prompts x "
             f"{args.group_size} samples; model {args.n_layer}x{args.n_embd}; device {args.device}",
             "", head]

    def fmt(x: Any) -> str:
        return "-" if x is None else f"{x:.3f}"

    for r in rows:
        cells = [r["entropy_start"], r["entropy_end"], r["rel_err_second_half"], r["cov_mean"],
                 r["reward_end"], r["pass@1"], r["pass@8"], r["rh_r2"]]
        lines.append(f"| {r['task']} | {r['method']} | " + " | ".join(fmt(c) for c in cells) + " |")
    lines.append("")
    for task in dict.fromkeys(r["task"] for r in rows):
        if not make_task(task).exclude_heldout:
            lines.append(f"{task}: pass@1/pass@8 are measured on training prompts (its held-out "
                         f"prompts are not excluded from training).")
    for task in dict.fromkeys(r["task"] for r in rows):
        pts = [(m["entropy"], m["pass@1"]) for r in rows if r["task"] == task
               for m in _history(args, task, r["method"]) if m["evaluated"]]
        fit = fit_rh_law([p[0] for p in pts], [p[1] for p in pts])
        lines.append(f"Pooled R = -a exp(H) + b on {task} ({len(pts)} held-out points, all "
                     f"methods): a = {fmt(fit['rh_a'])}, b = {fmt(fit['rh_b'])}, "
                     f"R^2 = {fmt(fit['rh_r2'])}")
    _plot(args, rows)
    return "\n".join(lines) + "\n"


def _plot(args: Args, rows: list[dict[str, Any]]) -> None:
    plt = optional_pyplot()
    if plt is None:
        return
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(len(tasks), 3, figsize=(13, 3.2 * len(tasks)), squeeze=False)
    for i, task in enumerate(tasks):
        for r in (r for r in rows if r["task"] == task):
            hist = _history(args, task, r["method"])
            steps = [m["step"] for m in hist]
            for j, key in enumerate(("entropy", "reward", "pass@1")):
                axes[i][j].plot(steps, [m[key] for m in hist], label=r["method"], lw=1)
        axes[i][0].axhline(args.setpoint, color="k", ls=":", lw=0.8)
        for j, key in enumerate(("entropy", "reward", "held-out pass@1")):
            axes[i][j].set_title(f"{task}: {key}")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, Path(args.out_dir) / "curves.png", dpi=90)


def main(argv: list[str] | None = None) -> int:
    """Run every (task, method) pair, then write results.md and curves.png."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision("high")  # TF32 matmuls on CUDA; no effect on CPU
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    rows = []
    t0 = time.perf_counter()
    for task in args.tasks.split(","):
        for method in args.methods.split(","):
            r = run_one(task, method, args)
            rows.append(r)
            print(f"{task:15s} {method:14s} H {r['entropy_start']:.3f}->{r['entropy_end']:.3f} "
                  f"err {r['rel_err_second_half']:.3f} pass@1 {r['pass@1']:.3f} "
                  f"({r['wall_s']:.1f}s)", flush=True)
    text = write_results(args.out_dir, args.to_dict(), rows, report(args, rows))
    print(text)
    print(f"total {time.perf_counter() - t0:.1f}s -> {args.out_dir}/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
