"""Identify the entropy dynamics of GRPO training and design entropy controllers on the model.

Issue 13, items 2 and 3. A control engineer's loop on the training run seen as a plant
(input u = entropy-bonus coefficient, output H = token-mean entropy of a step's rollout):

1. **Excitation**: open-loop runs with a PRBS on the bonus (``prbs`` entropy controller) from the
   same SFT warm start as the collapse study, on identification seeds (``--id_seeds``) and on
   held-out seeds (``--test_seeds``, different PRBS sequences).
2. **Identification** (:mod:`llm_rl.sysid`): ARX ``H_{k+1} = a H_k + b u_k + c`` (orders
   ``--na``, ``--nb``) by least squares and a discrete-time SINDy model with control, fitted on
   the identification runs; one-step and ``--horizon``-step (free-run) prediction error on the
   held-out runs next to the constant (``H_hat = H_0``) and persistence predictors; the
   measurement-noise estimate of the open-loop runs.
3. **Design** (:mod:`llm_rl.entropy_design`): PI gains by pole placement on the first-order ARX
   model (closed-loop time constant ``--taus``) and by Optuna on the model (simulated closed loop
   with the identified noise); the hand-tuned PI (kp 1.0, ki 0.1, tuned on seed 1) beside them.
4. **Verification**: real training runs with each designed controller (and the fixed dual ascent)
   on verification seeds (``--verify_seeds``; none of them used for identification), set-point
   ``--setpoint``; mean ``|H - H*| / H*`` over the second half of the raw per-step entropy.

Output (``--out_dir``): run directories ``<task>/<kind>-s<seed>/`` (metrics.jsonl; a
``summary.json`` stamped with the config hash, so a rerun reuses finished runs),
``model_<task>_arx.json`` / ``model_<task>_sindy.json`` (the identified models),
``identification.json``, ``results.md`` / ``results.json`` (prediction-error table, noise,
gains, verification errors; all written atomically).

Run:
- ``python studies/llm_entropy_sysid.py --smoke``: CPU, tiny sizes, one task; ~30-60 s on 2 cores.
- CPU reduced size (studies/README.md): ``OMP_NUM_THREADS=1 python studies/llm_entropy_sysid.py
  --out_dir /work/results13/sysid`` (2x64 GPT-2, SFT 300 steps, 120 steps x 16 prompts x 8;
  ~20-40 s per run; 2 tasks x (5 excitation + 6 designs x 5 verification seeds) = 70 runs,
  ~35 min on one core; two processes with ``--tasks sumpair`` / ``--tasks countdown-lite`` then
  one without, which reuses every run and writes the joint report).
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

from ctrlbench.io import atomic_write
from ctrlbench.options import Options, option
from llm_rl.config import SFTConfig, TrainConfig
from llm_rl.entropy_control import ControlConfig
from llm_rl.losses import LossConfig
from llm_rl.policy import PolicySpec
from llm_rl.study_runs import parse_study_args, train_or_reuse, write_results
from llm_rl.tracking import DUAL_FIXED, DUAL_OLD, short_hash, tracking_summary

#: ``--smoke`` sizes (flags given explicitly win).
SMOKE: dict[str, Any] = {"tasks": "sumpair", "steps": 30, "prompts_per_step": 4,
                         "sft_steps": 100, "eval_size": 8, "id_seeds": "10", "test_seeds": "11",
                         "verify_seeds": "0", "horizon": 15, "designs": "pole,dual-fixed",
                         "n_trials": 20, "h_max": 5.0,
                         "out_dir": "results/llm_entropy_sysid_smoke"}
#: PRBS of the bonus per task (low, high, warmup steps at 0): around the bonus the PI needs at
#: H* = 0.6 (sumpair ~0.25, countdown-lite ~0.07 in the collapse study's PID runs). The plant is
#: close to an integrator with a runaway region: on sumpair, 0 / 0.4 from the start drove H to
#: 2.0 in 8 steps and to the uniform distribution (3.1 nats) for good (seed 10), so sumpair's
#: PRBS waits (bonus 0) until H has fallen to ~0.65 and stays below the PI's mean bonus.
EXCITATION = {"sumpair": (0.05, 0.35, 25), "countdown-lite": (0.0, 0.1, 0)}
DESIGNS = ("pole", "minrho", "optuna", "hand-pi", "dual-fixed", "dual-old")


@dataclass(frozen=True)
class Args(Options):
    """Study settings (``--smoke`` overrides the sizes marked in SMOKE)."""

    tasks: str = option("sumpair,countdown-lite", "Comma-separated tasks.")
    setpoint: float = option(0.6, "Target entropy H* of the verification runs (nats).", gt=0)
    steps: int = option(120, "GRPO steps per run.", ge=4)
    prompts_per_step: int = option(16, "Prompts per rollout.", ge=1)
    group_size: int = option(8, "Samples per prompt.", ge=1)
    n_layer: int = option(2, "Model depth.", ge=1)
    n_embd: int = option(64, "Model width.", ge=1)
    sft_steps: int = option(300, "Warm-start SFT steps.", ge=0)
    eval_size: int = option(32, "Held-out problems of the trainer's evaluation.", ge=1)
    hold: int = option(4, "PRBS: steps each bit is held.", ge=1)
    id_seeds: str = option("10,11", "Seeds of the identification (excitation) runs.")
    test_seeds: str = option("12", "Seeds of the held-out excitation runs (prediction error).")
    verify_seeds: str = option("0,2,3,4,5", "Seeds of the verification runs (held out from "
                               "identification and tuning; 0, 2, 3 are the collapse study's).")
    h_max: float = option(1.2, "Identification uses each run up to its first H > h_max (the "
                          "operating region; beyond it the entropy can run away).", gt=0)
    design_order: int = option(2, "ARX order (na = nb) of the minrho design's model.", ge=1,
                               le=5)
    na: int = option(1, "ARX output order.", ge=1)
    nb: int = option(1, "ARX input order.", ge=1)
    sindy_degree: int = option(2, "SINDy polynomial degree in (H, u).", ge=1, le=5)
    sindy_threshold: float = option(0.01, "SINDy STLSQ threshold.", ge=0)
    horizon: int = option(50, "Free-run prediction horizon (steps).", ge=1)
    taus: str = option("3", "Pole placement: closed-loop time constants (steps), one design "
                       "pole-tau<tau> each (3 chosen over 2 and 5 on the identification seeds "
                       "10, 11).")
    pid_kd: float = option(0.0, "Derivative gain added to the pole-placement PI (on the "
                           "measurement, controllers.pid's filter; a value other than 0 is added "
                           "to the design names).", ge=0)
    pid_u_max: float = option(1.0, "Upper bonus limit of the designed PIs (a value other than "
                              "1 is added to the design names).", gt=0)
    n_trials: int = option(60, "Optuna trials on the identified model.", ge=1)
    designs: str = option(",".join(DESIGNS), "Controllers verified on real runs: "
                          + ", ".join(DESIGNS) + " (pole: one per --taus).")
    device: str = option("cuda" if torch.cuda.is_available() else "cpu", "Torch device.")
    out_dir: str = option("results/llm_entropy_sysid", "Runs, models and the report.")
    smoke: bool = option(False, "Tiny sizes for the tests (~30-60 s on 2 cores).")
    threads: int = option(1, "torch CPU threads.", ge=1)


def parse_args(argv: list[str] | None = None) -> Args:
    """Flags generated from :class:`Args` (booleans take true/false; bare ``--smoke`` = true)."""
    return parse_study_args(Args, (__doc__ or "").splitlines()[0], argv, SMOKE)


def _seeds(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def train_config(task: str, name: str, seed: int, control: ControlConfig, args: Args
                 ) -> TrainConfig:
    """The collapse study's reduced-size run of ``task`` with ``control``, in
    ``<out_dir>/<task>/<name>-s<seed>``."""
    return TrainConfig(
        task=task, policy=PolicySpec(n_layer=args.n_layer, n_embd=args.n_embd, n_head=4),
        sft=SFTConfig(steps=args.sft_steps), sft_dir=f"{args.out_dir}/sft", steps=args.steps,
        prompts_per_step=args.prompts_per_step, group_size=args.group_size, lr=1e-3,
        minibatches=2, loss=LossConfig(), control=control, eval_every=max(args.steps // 4, 1),
        eval_size=args.eval_size, checkpoint_every=args.steps, seed=seed, device=args.device,
        tensorboard=False, out_dir=f"{args.out_dir}/{task}/{name}-s{seed}",
    )


def excitation_control(task: str, seed: int, args: Args) -> ControlConfig:
    """PRBS on the bonus with the task's :data:`EXCITATION`, bits seeded by ``seed``."""
    low, high, warmup = EXCITATION.get(task, (0.0, 0.2, 0))
    warmup = min(warmup, args.steps // 4)  # short (smoke) runs still get a PRBS
    return ControlConfig(name="prbs", setpoint=args.setpoint, options={
        "low": low, "high": high, "hold": args.hold, "warmup": warmup, "prbs_seed": seed})


def run(task: str, name: str, seed: int, control: ControlConfig, args: Args) -> dict[str, Any]:
    """Train (or reuse) one run; its summary carries the tracking error."""
    cfg = train_config(task, name, seed, control, args)
    return train_or_reuse(cfg, lambda h: tracking_summary(h, args.setpoint), task=task,
                          method=name, seed=seed)


def history(task: str, name: str, seed: int, args: Args) -> list[dict[str, Any]]:
    """The metrics rows of a finished run."""
    path = Path(args.out_dir) / task / f"{name}-s{seed}" / "metrics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x]


def identify(task: str, args: Args) -> dict[str, Any]:
    """Fit ARX and SINDy on the identification runs; errors on the held-out runs; noise."""
    from llm_rl.sysid import (
        ARXModel,
        SINDyModel,
        load_runs,
        noise_estimate,
        prediction_errors,
        save_model,
        truncate,
    )

    d = Path(args.out_dir) / task
    train = truncate(load_runs([d / f"prbs-s{s}" for s in _seeds(args.id_seeds)]), args.h_max)
    test = truncate(load_runs([d / f"prbs-s{s}" for s in _seeds(args.test_seeds)]), args.h_max)
    if not train or not test:
        raise ValueError(f"{task}: no excitation run stays below h_max = {args.h_max} for two "
                         f"steps; lower the PRBS levels or raise --h_max")
    horizon = min(args.horizon, max(len(r) for r in test) - 2)
    r = noise_estimate(load_runs([d / f"open-s{s}" for s in _seeds(args.id_seeds)])) ** 2
    arx = ARXModel(args.na, args.nb).fit(train)
    arx1 = arx if (args.na, args.nb) == (1, 1) else ARXModel(1, 1).fit(train)
    sindy = SINDyModel(args.sindy_degree, args.sindy_threshold).fit(train)
    errors = {f"arx({args.na},{args.nb})": prediction_errors(arx, test, horizon),
              "sindy": prediction_errors(sindy, test, horizon)}
    if arx1 is not arx:
        errors["arx(1,1)"] = prediction_errors(arx1, test, horizon)
    o = args.design_order
    arxd = ARXModel(o, o).fit(train)
    errors.setdefault(f"arx({o},{o})", prediction_errors(arxd, test, horizon))
    save_model(Path(args.out_dir) / f"model_{task}_arx{o}{o}.json", arxd, {"task": task})
    kalman = arx1.kalman_options(r)
    save_model(Path(args.out_dir) / f"model_{task}_arx.json", arx1,
               {"kalman": kalman, "noise_std": r ** 0.5, "task": task, "h_max": args.h_max})
    save_model(Path(args.out_dir) / f"model_{task}_sindy.json", sindy, {"task": task})
    return {"task": task, "arx": arx1, "arx_design": arxd, "errors": errors, "horizon": horizon,
            "noise_std": r ** 0.5, "kalman": kalman, "sindy_equation": sindy.equation(),
            "train_steps": [len(x) for x in train], "test_steps": [len(x) for x in test]}


def designs(task: str, ident: dict[str, Any], args: Args) -> dict[str, ControlConfig]:
    """The controllers verified on real runs, by name (:data:`DESIGNS`)."""
    from llm_rl.entropy_design import min_spectral_radius_pi, pole_placement_pi, tune_pi_optuna

    arx, r, h = ident["arx"], ident["noise_std"] ** 2, args.setpoint
    out: dict[str, ControlConfig] = {}
    want = args.designs.split(",")
    cap = "" if args.pid_u_max == 1.0 else f"-umax{args.pid_u_max:g}"
    kd = "" if args.pid_kd == 0.0 else f"-kd{args.pid_kd:g}"
    for tau in ([float(t) for t in args.taus.split(",") if t.strip()] if "pole" in want else []):
        try:
            pole = pole_placement_pi(arx, tau)
            out[f"pole-tau{tau:g}{kd}{cap}"] = ControlConfig(
                name="pid", setpoint=h,
                options={**pole.pid_options(u_max=args.pid_u_max), "kd": args.pid_kd})
        except ValueError as exc:  # recorded, the study goes on
            print(f"{task}: no pole-placement design for tau = {tau:g}: {exc}", flush=True)
    if "optuna" in want:
        opt = tune_pi_optuna(arx, setpoint=h, r=r, n_trials=args.n_trials, seed=0,
                             u_max=args.pid_u_max,
                             storage=f"sqlite:///{Path(args.out_dir).resolve()}/optuna.db",
                             study_name=f"{task}-" + short_hash(
                                 arx.to_dict(), r, h, args.n_trials, args.pid_u_max))
        out[f"optuna{cap}"] = ControlConfig(name="pid", setpoint=h,
                                            options=opt.pid_options(u_max=args.pid_u_max))
    if "minrho" in want:
        mr = min_spectral_radius_pi(ident["arx_design"])
        out[f"minrho{kd}{cap}"] = ControlConfig(
            name="pid", setpoint=h,
            options={**mr.pid_options(u_max=args.pid_u_max), "kd": args.pid_kd})
    if "hand-pi" in want:
        out["hand-pi"] = ControlConfig(name="pid", setpoint=h)  # kp 1.0, ki 0.1 (seed 1)
    if "dual-fixed" in want:
        out["dual-fixed"] = ControlConfig(name="dual", setpoint=h, options=DUAL_FIXED)
    if "dual-old" in want:
        out["dual-old"] = ControlConfig(name="dual", setpoint=h, options=DUAL_OLD)
    return out


def report(args: Args, idents: list[dict[str, Any]], gains: dict[str, dict[str, Any]],
           rows: list[dict[str, Any]]) -> str:
    """Markdown: prediction errors, noise, Kalman numbers, gains, verification errors."""
    lines = [f"{args.steps} steps x {args.prompts_per_step} prompts x {args.group_size}; model "
             f"{args.n_layer}x{args.n_embd}; SFT {args.sft_steps}; identification seeds "
             f"{args.id_seeds}, held-out excitation seeds {args.test_seeds}, verification seeds "
             f"{args.verify_seeds}; H* = {args.setpoint}", "",
             "### Prediction error on held-out runs (RMSE, nats)", "",
             "| task | model | one-step | persistence | free-run (h steps) | constant H_0 | "
             "windows |", "|---|---|---|---|---|---|---|"]
    for i in idents:
        for name, e in i["errors"].items():
            lines.append(f"| {i['task']} | {name} | {e['one_step']:.4f} | {e['persistence']:.4f}"
                         f" | {e['free_run']:.4f} ({i['horizon']}) | {e['constant']:.4f} | "
                         f"{int(e['windows'])} |")
    lines += ["", "### Identified first-order model, noise, Kalman numbers", ""]
    for i in idents:
        k = i["kalman"]
        lines.append(f"- {i['task']}: H_k+1 = {k['a']:.4f} H_k + {k['b']:.4f} u_k + {k['c']:.4f};"
                     f" q = {k['q']:.3g}, measurement noise std {i['noise_std']:.4f} (r = "
                     f"{k['r']:.3g}); SINDy {i['sindy_equation']}; fit on {i['train_steps']} "
                     f"steps, tested on {i['test_steps']}")
    lines += ["", "### Designed controllers", ""]
    for task, g in gains.items():
        for name, opts in g.items():
            lines.append(f"- {task} {name}: {opts}")
    lines += ["", "### Verification on real runs: mean abs(H - H*)/H* over the second half", "",
              "| task | controller | " + " | ".join(f"seed {s}" for s in
                                                    _seeds(args.verify_seeds))
              + " | mean | max H | reward end |", "|---|---|" + "---|" *
              (len(_seeds(args.verify_seeds)) + 3)]
    for task in dict.fromkeys(r["task"] for r in rows):
        for name in dict.fromkeys(r["method"] for r in rows if r["task"] == task):
            rs = [r for r in rows if r["task"] == task and r["method"] == name]
            errs = [r["rel_err_second_half"] for r in rs]
            lines.append(f"| {task} | {name} | " + " | ".join(f"{e:.3f}" for e in errs)
                         + f" | {np.mean(errs):.3f} | {max(r['entropy_max'] for r in rs):.2f} | "
                         f"{np.mean([r['reward_end'] for r in rs]):.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Excitation runs, identification, design, verification runs, report."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    idents, gains, rows = [], {}, []
    for task in args.tasks.split(","):
        for seed in _seeds(args.id_seeds) + _seeds(args.test_seeds):
            run(task, "prbs", seed, excitation_control(task, seed, args), args)
        for seed in _seeds(args.id_seeds):
            run(task, "open", seed, ControlConfig(setpoint=args.setpoint), args)
        ident = identify(task, args)
        idents.append(ident)
        controls = designs(task, ident, args)
        gains[task] = {n: c.options.to_dict() for n, c in controls.items()}
        for name, control in controls.items():
            for seed in _seeds(args.verify_seeds):
                r = run(task, name, seed, control, args)
                rows.append(r)
                print(f"{task:15s} {name:11s} seed {seed} err {r['rel_err_second_half']:.3f} "
                      f"H end {r['entropy_end']:.3f} max {r['entropy_max']:.2f} "
                      f"({r['wall_s']:.1f}s)", flush=True)
    text = write_results(args.out_dir, args.to_dict(), rows, report(args, idents, gains, rows))
    atomic_write(Path(args.out_dir) / "identification.json", lambda fh: fh.write(json.dumps(
        [{k: v for k, v in i.items() if not k.startswith("arx")} for i in idents] + [gains],
        indent=1, default=str).encode()))
    print(text)
    print(f"total {time.perf_counter() - t0:.1f}s -> {args.out_dir}/results.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
