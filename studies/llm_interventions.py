"""Entropy interventions side by side: ten methods from one SFT start per task (issue 14).

Question: from the same warm start, how do the entropy interventions of LLM_RL.md change the
entropy trajectory, the training reward and held-out pass@1 / pass@8, and how many tokens does
each touch? Methods: ``open-loop`` (GRPO, no bonus), ``entropy-bonus`` (constant 0.05),
``clip-cov`` (rho 0.02), ``kl-cov`` (kappa 0.02), ``pid`` (PI on the bonus, H* = 0.6; these five
with the settings of studies/llm_entropy_collapse.py), and the exploration losses of
:mod:`llm_rl.losses_explore` at their LLM_RL.md defaults: ``lp-reg``, ``steer``, ``siren``,
``epo``, ``hapo``. Tasks: ``sumpair-heldout`` (sumpair over N = 4..99 with the held-out prompts
excluded from training, so pass@k is measured on sums never trained on) and ``countdown-lite``
(held-out prompts excluded too).

Per run the table reports entropy at the start and end (mean of the first / last 5 steps),
training reward at the end (same window), held-out pass@1 and pass@8 at the last step and
averaged over the evaluations of the second half ("late", less noisy), the
mean fraction of tokens the method touched (``touched_frac`` of the loss; 0 for methods that act
through the bonus), and the mean wall time per GRPO step (rollout, updates and evaluation).

Output (``--out_dir``): ``<task>/<method>/`` run directories, ``<task>/<method>/summary.json``
(atomic, with the hash of the run's TrainConfig; a rerun skips finished runs with that hash and
resumes unfinished ones), ``results.md``, ``results.json`` and ``curves.png`` (entropy, reward,
pass@1, pass@8 per step).

Run:
- ``python studies/llm_interventions.py --smoke``: seconds on CPU (tiny sizes; run by the tests).
- CPU size of studies/README.md: ``OMP_NUM_THREADS=1 python studies/llm_interventions.py
  --device cpu`` (2x64 model, 600 SFT steps, 150 steps x 16 prompts x 8 samples, 20 runs).
- GPU: ``python studies/llm_interventions.py --device cuda --n_layer 4 --n_embd 256 --steps 300
  --prompts_per_step 64 --sft_steps 300 --fast_rollout true`` (not yet run).
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
from llm_rl.policy import PolicySpec
from llm_rl.study_runs import parse_study_args, train_or_reuse, write_results

METHODS = ("open-loop", "entropy-bonus", "clip-cov", "kl-cov", "pid", "lp-reg", "steer", "siren",
           "epo", "hapo")
#: ``--smoke`` sizes (flags given explicitly win).
SMOKE: dict[str, Any] = {"steps": 4, "prompts_per_step": 4, "group_size": 4, "n_layer": 1,
                         "n_embd": 32, "eval_size": 4, "eval_every": 2, "sft_steps": 20,
                         "out_dir": "results/llm_interventions_smoke"}


@dataclass(frozen=True)
class Args(Options):
    """Study settings (``--smoke`` overrides the sizes marked below)."""

    tasks: str = option("sumpair-heldout,countdown-lite", "Comma-separated tasks.")
    methods: str = option(",".join(METHODS), "Comma-separated methods.")
    setpoint: float = option(0.6, "Target entropy H* of the pid method (nats, token mean).", gt=0)
    steps: int = option(150, f"GRPO steps per run (smoke: {SMOKE['steps']}).", ge=1)
    prompts_per_step: int = option(16, f"Prompts per rollout (smoke: "
                                   f"{SMOKE['prompts_per_step']}).", ge=1)
    group_size: int = option(8, f"Samples per prompt (smoke: {SMOKE['group_size']}).", ge=1)
    n_layer: int = option(2, f"Model depth (smoke: {SMOKE['n_layer']}).", ge=1)
    n_embd: int = option(64, f"Model width (smoke: {SMOKE['n_embd']}).", ge=1)
    sft_steps: int = option(600, f"Warm-start SFT steps (smoke: {SMOKE['sft_steps']}).", ge=0)
    lr: float = option(1e-3, "GRPO learning rate (collapse-prone setting of LLM_RL.md).", gt=0)
    eval_every: int = option(10, f"Held-out evaluation period (smoke: {SMOKE['eval_every']}).",
                             ge=1)
    eval_size: int = option(9, f"Held-out problems (smoke: {SMOKE['eval_size']}); distinct "
                            "prompts excluded from training.", ge=1)
    seed: int = option(0, "Seed of every run.")
    device: str = option("cuda" if torch.cuda.is_available() else "cpu", "Torch device.")
    fast_rollout: bool = option(False, "Static-cache (+ CUDA graph) sampling.")
    out_dir: str = option("results/llm_interventions", "Where runs, records and the report go "
                          f"(smoke: {SMOKE['out_dir']}).")
    sft_dir: str = option("", "Warm-start cache (default: <out_dir>/sft).")
    smoke: bool = option(False, "Seconds-long CPU version: the smoke sizes above.")
    threads: int = option(1, "torch CPU threads.", ge=1)


def parse_args(argv: list[str] | None = None) -> Args:
    """Flags generated from :class:`Args` (booleans take true/false; bare ``--smoke`` = true)."""
    args = parse_study_args(Args, (__doc__ or "").splitlines()[0], argv, SMOKE)
    for m in args.methods.split(","):
        if m not in METHODS:
            raise KeyError(f"unknown method {m!r}; valid: {', '.join(METHODS)}")
    return args


def method_config(method: str, setpoint: float) -> tuple[LossConfig, ControlConfig]:
    """Loss and entropy controller of one method (the first five as in llm_entropy_collapse)."""
    open_loop = ControlConfig(setpoint=setpoint)
    if method in ("lp-reg", "steer", "siren", "epo", "hapo"):
        return LossConfig(name=method), open_loop
    table: dict[str, tuple[LossConfig, ControlConfig]] = {
        "open-loop": (LossConfig(), open_loop),
        "entropy-bonus": (LossConfig(), ControlConfig(setpoint=setpoint,
                                                      options={"value": 0.05})),
        "clip-cov": (LossConfig(name="clip-cov", options={"clip_cov_ratio": 0.02}), open_loop),
        "kl-cov": (LossConfig(name="kl-cov", options={"kl_cov_ratio": 0.02}), open_loop),
        "pid": (LossConfig(), ControlConfig(name="pid", setpoint=setpoint, options=PIDOptions(
            kp=1.0, ki=0.1, kd=0.0, u_max=1.0))),
    }
    if method not in table:
        raise KeyError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    return table[method]


def train_config(task: str, method: str, args: Args) -> TrainConfig:
    """The :class:`TrainConfig` of one (task, method) run (2 minibatches per rollout)."""
    loss, control = method_config(method, args.setpoint)
    return TrainConfig(
        task=task, policy=PolicySpec(n_layer=args.n_layer, n_embd=args.n_embd, n_head=4),
        sft=SFTConfig(steps=args.sft_steps), sft_dir=args.sft_dir or f"{args.out_dir}/sft",
        steps=args.steps, prompts_per_step=args.prompts_per_step, group_size=args.group_size,
        lr=args.lr, minibatches=2, loss=loss, control=control, eval_every=args.eval_every,
        eval_size=args.eval_size, checkpoint_every=max(args.steps // 2, 1), seed=args.seed,
        device=args.device, fast_rollout=args.fast_rollout, tensorboard=False,
        out_dir=f"{args.out_dir}/{task}/{method}",
    )


def summarize(hist: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-run numbers of the table (windows of 5 steps, or 1 when the run is shorter than 10)."""
    k = 5 if len(hist) >= 10 else 1
    late = [m for m in hist[len(hist) // 2 :] if m["evaluated"]] or hist[-1:]

    def mean(key: str, rows: list[dict[str, Any]]) -> float:
        return sum(float(m[key]) for m in rows) / len(rows)

    return {
        "entropy_start": mean("entropy", hist[:k]), "entropy_end": mean("entropy", hist[-k:]),
        "reward_end": mean("reward", hist[-k:]), "pass@1": hist[-1]["pass@1"],
        "pass@8": hist[-1].get("pass@8"), "pass@1_late": mean("pass@1", late),
        "pass@8_late": mean("pass@8", late), "n_eval_late": len(late),
        "touched_frac": sum(float(m.get("touched_frac", 0.0)) for m in hist) / len(hist),
        "step_s": mean("time_s", hist), "steps": len(hist),
    }


def run_one(task: str, method: str, args: Args) -> dict[str, Any]:
    """Train one run, or reuse its summary for this exact config
    (:func:`llm_rl.study_runs.train_or_reuse`)."""
    return train_or_reuse(train_config(task, method, args), summarize, task=task,
                          method=method)


def _history(args: Args, task: str, method: str) -> list[dict[str, Any]]:
    path = Path(args.out_dir) / task / method / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x]


def report(args: Args, rows: list[dict[str, Any]]) -> str:
    """Markdown table of every run; also draws curves.png when matplotlib imports."""
    lines = [f"{args.steps} steps x {args.prompts_per_step} prompts x {args.group_size} samples; "
             f"model {args.n_layer}x{args.n_embd}; {args.sft_steps} SFT steps; held-out "
             f"{args.eval_size} prompts x 8 samples, excluded from training; seed {args.seed}; "
             f"device {args.device}", "",
             "| task | method | H start | H end | reward end | pass@1 | pass@8 | pass@1 late | "
             "pass@8 late | touched frac | s/step |", "|" + "---|" * 11]

    def fmt(x: Any, digits: int = 3) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    for r in rows:
        cells = [fmt(r["entropy_start"]), fmt(r["entropy_end"]), fmt(r["reward_end"]),
                 fmt(r["pass@1"]), fmt(r["pass@8"]), fmt(r["pass@1_late"]),
                 fmt(r["pass@8_late"]), fmt(r["touched_frac"], 4), fmt(r["step_s"], 2)]
        lines.append(f"| {r['task']} | {r['method']} | " + " | ".join(cells) + " |")
    lines += ["", "pass@1 / pass@8: at the last step; 'late': mean over the held-out evaluations "
              "of the second half of the run. Single seed: differences within the evaluation "
              "noise (compare the late and last-step columns) are not findings."]
    _plot(args, rows)
    return "\n".join(lines) + "\n"


def _plot(args: Args, rows: list[dict[str, Any]]) -> None:
    plt = optional_pyplot()
    if plt is None:
        return
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    keys = ("entropy", "reward", "pass@1", "pass@8")
    fig, axes = plt.subplots(len(tasks), 4, figsize=(16, 3.2 * len(tasks)), squeeze=False)
    for i, task in enumerate(tasks):
        for r in (r for r in rows if r["task"] == task):
            hist = _history(args, task, r["method"])
            evals = [m for m in hist if m["evaluated"]]
            for j, key in enumerate(keys):
                src = evals if key.startswith("pass") else hist
                axes[i][j].plot([m["step"] for m in src], [m[key] for m in src],
                                label=r["method"], lw=1)
        for j, key in enumerate(keys):
            axes[i][j].set_title(f"{task}: {key}" + (" (held-out)" if j >= 2 else ""))
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, Path(args.out_dir) / "curves.png", dpi=90)


def main(argv: list[str] | None = None) -> int:
    """Run every (task, method) pair, then write results.md, results.json and curves.png."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    rows = []
    t0 = time.perf_counter()
    for task in args.tasks.split(","):
        for method in args.methods.split(","):
            r = run_one(task, method, args)
            rows.append(r)
            print(f"{task:16s} {method:14s} H {r['entropy_start']:.3f}->{r['entropy_end']:.3f} "
                  f"pass@1 {r['pass@1']:.3f} touched {r['touched_frac']:.4f} "
                  f"{r['step_s']:.2f}s/step", flush=True)
    text = write_results(args.out_dir, args.to_dict(), rows, report(args, rows))
    print(text)
    print(f"total {time.perf_counter() - t0:.1f}s -> {args.out_dir}/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
