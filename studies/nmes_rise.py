"""GA-tuned vs hand-tuned RISE for NMES knee extension on virtual patients (MODELS.md section 5;
Arcolezi et al., arXiv 2006.15605).

Claim (*unverified*, no RMSE table available): RISE gains tuned offline by a genetic algorithm
on neural-network models of each patient, identified from past sessions, track better than
empirically tuned gains and fatigue the muscle less.

Pipeline per virtual patient ``p`` (``ctrlbench/NMESKnee-v0``, ``patient="random"``, reset seed
``p``; each stage cached in ``<out>/patients/<p>.json``, so a rerun resumes):

1. **Past sessions** (:func:`controllers.nmes_ident.past_session`): ``--sessions`` logged
   sessions of ``--session_steps`` periods under random pulse-width levels (0-260 us held
   0.5-3 s, no stimulation above 70 deg, levels lowered after each such stop), measured angle
   and velocity with noise (0.005 rad, 0.05 rad/s); session seeds ``1000 p + i``; one more
   session (seed ``1000 p + 999``) is held out.
2. **Identification**: :class:`~controllers.nmes_ident.MLPPatientModel` (torch MLP) and
   :class:`~controllers.nmes_ident.SINDyPatientModel` (pysindy ``DiscreteSINDy``); one-step and
   5 s (100-step) open-loop angle RMSE on the held-out session, with the hold predictor.
3. **GA tuning** (:func:`controllers.rise_tuning.tune_rise`): differential evolution over the
   four RISE gains (physical units) on each model, starting from the hand-tuned gains.
4. **Evaluation** on the true patient (:func:`ctrlbench.simulate.simulate`, one 40 s session,
   reference ``"random"`` (a step or sine profile per seed), measurement noise as in the logs):
   ``rise-hand`` (the same gains for all patients), ``rise-ga-nn``, ``rise-ga-sindy``, ``pid``
   (the plant's PI + feed-forward design), ``mpc`` (generic NMPC on the nominal model, horizon
   3 s, one RK4 substep, move weight 10, terminal weight 10: its default 0.5 s horizon ends every
   session early, as it cannot see past the 1 s activation lag).

**Hand tuning** (:func:`controllers.rise_tuning.hand_tune_rise`, done once, cached in
``<out>/hand.json``): on the nominal patient, each trial one whole session on the step and one
on the sine reference (seed 0), start
at ``ks = 40, alpha1 = 2, alpha2 = 1, beta = 10`` and try, one gain at a time, ``ks`` in
10-320, then ``alpha1`` in 1-8, ``alpha2`` in 0.3-10, ``beta`` in 0-300, each time keeping the
value of lowest cost (the GA's cost measured on the plant; leaving the range of motion is
penalized).

Metrics per run: RMSE of the true angle [deg] over the session (until an early end), fitness at
the end, stimulation effort (mean pulse width [us]), early end (out of range). ``results.md``
shows the median over patients, also over the whole (not ended early) sessions only, and the
runs that ended early (their RMSE covers the part before the stop, fitness and effort too);
``results.json`` holds every row, the identification errors, the tuned gains and the timings;
``figure.png`` shows angle and pulse width of every controller on patient 0.

Run: ``python studies/nmes_rise.py`` (7 patients; prints its timings) or ``--smoke`` (seconds:
2 patients, short sessions, tiny models and search, 100-step evaluation; run by
``tests/test_nmes_study.py``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctrlbench.interrupt import run_script
from ctrlbench.io import atomic_write_bytes, save_figure
from ctrlbench.options import Options, option, parse_flags
from ctrlbench.provenance import format_provenance, provenance

PLANT = "ctrlbench/NMESKnee-v0"
CONTROLLERS = ("rise-hand", "rise-ga-nn", "rise-ga-sindy", "pid", "mpc")


@dataclass(frozen=True)
class Args(Options):
    """Study settings (``--smoke`` replaces the sizes by tiny ones)."""

    label = "nmes_rise"
    out: str | None = option(None, "study folder (default results/nmes_rise, "
                             "results/nmes_rise_smoke with --smoke)")
    smoke: bool = option(False, "seconds-long version: tiny sessions, models, search and runs")
    patients: int = option(7, "virtual patients (reset seeds 0..patients-1)", ge=1, le=10_000)
    sessions: int = option(2, "past sessions per patient for identification", ge=1, le=100)
    session_steps: int = option(800, "periods per past session (50 ms)", ge=50, le=800)
    epochs: int = option(1000, "MLP training steps (full batch)", ge=1, le=100_000)
    hidden: int = option(32, "MLP hidden units", ge=1, le=1024)
    popsize: int = option(6, "differential_evolution popsize (x 4 gains)", ge=2, le=100)
    maxiter: int = option(12, "differential_evolution generations", ge=1, le=1000)
    tune_steps: int = option(600, "periods of each tuning reference", ge=10, le=2000)
    hand_steps: int = option(800, "periods of each hand-tuning session", ge=10, le=800)
    steps: int = option(800, "periods of each evaluation session", ge=1, le=800)
    noise_theta: float = option(0.005, "angle measurement noise [rad]", ge=0.0, le=0.1)
    noise_omega: float = option(0.05, "velocity measurement noise [rad/s]", ge=0.0, le=1.0)
    mpc_horizon: int = option(60, "NMPC horizon [periods] (the default 10 ends every session "
                              "early: 0.5 s does not see past the 1 s activation lag)", ge=1,
                              le=200)
    mpc_r_move: float = option(10.0, "NMPC weight on input moves", ge=0.0, le=1e8)
    mpc_q_terminal: float = option(10.0, "NMPC terminal weight multiplier", ge=1.0, le=1e8)


SMOKE = {"patients": 2, "sessions": 1, "session_steps": 200, "epochs": 30, "hidden": 8,
         "popsize": 2, "maxiter": 1, "tune_steps": 40, "hand_steps": 40, "steps": 60,
         "mpc_horizon": 5}


def _plant_options(args: Args) -> dict[str, Any]:
    return {"patient": "random", "reference": "random", "noise_theta": args.noise_theta,
            "noise_omega": args.noise_omega}


def _settings(args: Args) -> Any:
    from controllers.rise_tuning import TuningSettings

    return TuningSettings(steps=args.tune_steps, popsize=args.popsize, maxiter=args.maxiter,
                          noise_theta=args.noise_theta)


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write(path: Path, data: Any) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=1).encode())


def hand_gains(args: Args, out: Path) -> dict[str, Any]:
    """The hand-tuned gains (cached in ``hand.json`` with every trial)."""
    from controllers.rise_tuning import HAND_SEQUENCE, HAND_START, hand_tune_rise

    s = _settings(args)
    key = json.dumps({"steps": args.hand_steps, "start": HAND_START.as_dict(),
                      "sequence": HAND_SEQUENCE, "noise": [args.noise_theta, args.noise_omega],
                      "cost": [s.tau_d, s.effort_weight, s.tv_weight, s.out_penalty]})
    path = out / "hand.json"
    cached = _load(path)
    if cached is not None and cached.get("key") == key:
        return dict(cached)
    t0 = time.perf_counter()
    noise = {"noise_theta": args.noise_theta, "noise_omega": args.noise_omega}
    gains, trials = hand_tune_rise(noise, settings=s, steps=args.hand_steps)
    data = {"key": key, "gains": gains.as_dict(), "trials": trials,
            "seconds": time.perf_counter() - t0}
    _write(path, data)
    return data


def run_metrics(traj: Any) -> dict[str, Any]:
    """RMSE [deg] on the true angle, end fitness, mean pulse [us], early end, and the traces."""
    theta = np.asarray(traj.info["theta_true"])
    ref = traj.observations[1:, 4]
    u = traj.actions[:, 0]
    return {"rmse_deg": math.degrees(float(np.sqrt(np.mean((ref - theta) ** 2)))),
            "fitness_end": float(traj.info["fitness"][-1]), "effort_us": float(np.mean(u)),
            "early_end": bool(traj.terminated), "n_steps": len(u),
            "theta_deg": np.degrees(theta).round(3).tolist(),
            "ref_deg": np.degrees(ref).round(3).tolist(), "pulse_us": u.round(2).tolist()}


def _evaluate(name: str, options: dict[str, Any], args: Args, seed: int) -> dict[str, Any]:
    from ctrlbench.registry import make_controller, make_plant
    from ctrlbench.simulate import simulate

    plant = make_plant(PLANT, **_plant_options(args))
    try:
        ctrl = make_controller(name, plant, **options)
        traj = simulate(plant, ctrl, steps=args.steps, seed=seed)
    finally:
        plant.close()
    return run_metrics(traj)


def patient(p: int, args: Args, hand: dict[str, float], out: Path) -> dict[str, Any]:
    """Identify, tune and evaluate for patient ``p``; cached in ``patients/<p>.json``."""
    from controllers.nmes_ident import (
        MLPPatientModel,
        SINDyPatientModel,
        past_session,
        prediction_errors,
    )
    from controllers.rise_tuning import RISEGains, tune_rise
    from ctrlbench.registry import make_plant

    path = out / "patients" / f"{p}.json"
    cached = _load(path)
    if cached is not None and cached.get("key") == _key(args, hand):
        return dict(cached)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    noise = {"noise_theta": args.noise_theta, "noise_omega": args.noise_omega}
    logs = [past_session(p, 1000 * p + i, steps=args.session_steps, **noise)
            for i in range(args.sessions)]
    held = past_session(p, 1000 * p + 999, steps=args.session_steps, **noise)
    timings["sessions_s"] = time.perf_counter() - t0
    models = {"nn": MLPPatientModel(hidden=args.hidden, epochs=args.epochs, seed=p),
              "sindy": SINDyPatientModel()}
    ident, tuned = {}, {}
    plant = make_plant(PLANT, **_plant_options(args))
    theta0 = float(np.mean([log.theta[0] for log in logs]))
    horizon = min(100, args.session_steps)
    try:
        for name, model in models.items():
            t1 = time.perf_counter()
            model.fit(logs)
            timings[f"fit_{name}_s"] = time.perf_counter() - t1
            ident[name] = prediction_errors(model, held, horizon=horizon)
            t1 = time.perf_counter()
            res = tune_rise(model, plant, RISEGains(**hand), _settings(args), theta0=theta0)
            timings[f"tune_{name}_s"] = time.perf_counter() - t1
            tuned[name] = res.to_dict()
    finally:
        plant.close()
    rise = {"units": "physical", "tau_d": _settings(args).tau_d}
    specs = {"rise-hand": ("rise", {**rise, **hand}),
             "rise-ga-nn": ("rise", {**rise, **tuned["nn"]["gains"]}),
             "rise-ga-sindy": ("rise", {**rise, **tuned["sindy"]["gains"]}),
             "pid": ("pid", {}),
             "mpc": ("mpc", {"horizon": args.mpc_horizon, "substeps": 1,
                             "r_move": args.mpc_r_move, "q_terminal": args.mpc_q_terminal})}
    runs = {}
    for ctrl, (name, opts) in specs.items():
        t1 = time.perf_counter()
        try:
            runs[ctrl] = _evaluate(name, opts, args, p)
        except Exception as exc:  # recorded, the study goes on
            runs[ctrl] = {"error": f"{type(exc).__name__}: {exc}"}
        timings[f"eval_{ctrl}_s"] = time.perf_counter() - t1
    data = {"key": _key(args, hand), "patient": p, "ident": ident, "tuned": tuned,
            "runs": runs, "timings": timings}
    _write(path, data)
    return data


def _key(args: Args, hand: dict[str, float]) -> str:
    d = {k: v for k, v in asdict(args).items() if k not in ("out", "patients")}
    return json.dumps({"args": d, "hand": hand}, sort_keys=True)


def table(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per controller: median RMSE, end fitness and effort over patients, early ends, errors."""
    rows = []
    for ctrl in CONTROLLERS:
        runs = [r["runs"][ctrl] for r in results]
        ok = [r for r in runs if "error" not in r]

        def med(key: str, ok: list[dict[str, Any]] = ok) -> float:
            return float(np.median([r[key] for r in ok])) if ok else math.nan

        full = [r for r in ok if not r["early_end"]]
        rows.append({"controller": ctrl, "patients": len(runs), "rmse_deg": med("rmse_deg"),
                     "rmse_completed_deg": med("rmse_deg", full),
                     "fitness_end": med("fitness_end"), "effort_us": med("effort_us"),
                     "early_end": sum(r["early_end"] for r in ok), "errors": len(runs) - len(ok)})
    return rows


def ident_table(results: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Median identification errors [deg] per model over patients."""
    out: dict[str, dict[str, float]] = {}
    for name in ("nn", "sindy"):
        errs = [r["ident"][name] for r in results]
        out[name] = {k: float(np.median([e[k] for e in errs])) for k in errs[0]}
    return out


def markdown(tab: list[dict[str, Any]], ident: dict[str, dict[str, float]],
             results: list[dict[str, Any]], hand: dict[str, float]) -> str:
    """Tables of the study."""
    lines = ["| controller | patients | median RMSE [deg] | median RMSE, whole sessions [deg] | "
             "median end fitness | median mean pulse [us] | ended early | errors |",
             "|---|---|---|---|---|---|---|---|"]
    for t in tab:
        lines.append(f"| {t['controller']} | {t['patients']} | {t['rmse_deg']:.2f} | "
                     f"{t['rmse_completed_deg']:.2f} | "
                     f"{t['fitness_end']:.3f} | {t['effort_us']:.1f} | {t['early_end']} | "
                     f"{t['errors']} |")
    h = ident["nn"].get("horizon_s", 5.0)
    lines += ["", f"Identification, held-out session, median over patients (angle RMSE [deg], "
              f"open loop {h:g} s):", "",
              "| model | one-step | open loop | hold one-step | hold open loop |",
              "|---|---|---|---|---|"]
    for name, e in ident.items():
        lines.append(f"| {name} | {e['one_step']:.3f} | {e['open_loop']:.3f} | "
                     f"{e['hold_one_step']:.3f} | {e['hold_open_loop']:.3f} |")
    lines += ["", "Gains (physical units: ks [us s/rad], alpha1, alpha2 [1/s], beta [us/s]):", "",
              "| patient | tuning | ks | alpha1 | alpha2 | beta | model cost |",
              "|---|---|---|---|---|---|---|",
              f"| all | hand | {hand['ks']:.3g} | {hand['alpha1']:.3g} | {hand['alpha2']:.3g} | "
              f"{hand['beta']:.3g} | |"]
    for r in results:
        for name, t in r["tuned"].items():
            g = t["gains"]
            lines.append(f"| {r['patient']} | GA {name} | {g['ks']:.3g} | {g['alpha1']:.3g} | "
                         f"{g['alpha2']:.3g} | {g['beta']:.3g} | {t['cost']:.2f} (start "
                         f"{t['start_cost']:.2f}) |")
    return "\n".join(lines) + "\n"


def figure(result: dict[str, Any], path: Path) -> None:
    """Angle and pulse width of every controller on one patient, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    done = [result["runs"][c] for c in CONTROLLERS if "error" not in result["runs"][c]]
    if done:
        longest = max(done, key=lambda r: r["n_steps"])
        axes[0].plot(0.05 * np.arange(1, longest["n_steps"] + 1), longest["ref_deg"], "k--",
                     lw=1, label="reference")
    for ctrl in CONTROLLERS:
        run = result["runs"][ctrl]
        if "error" in run:
            continue
        t = 0.05 * np.arange(1, run["n_steps"] + 1)
        axes[0].plot(t, run["theta_deg"], lw=1, label=ctrl)
        axes[1].plot(t, run["pulse_us"], lw=0.8, label=ctrl)
    axes[0].set_ylabel("knee angle [deg]")
    axes[0].set_title(f"virtual patient {result['patient']}")
    axes[1].set_ylabel("pulse width [us]")
    axes[1].set_xlabel("time [s]")
    axes[0].legend(fontsize=8, ncol=3)
    fig.tight_layout()
    save_figure(fig, path)


def parse_args(argv: list[str] | None = None) -> Args:
    """Flags from :class:`Args`; ``--smoke`` fills the sizes not given explicitly."""
    return parse_flags(Args, argv, description=__doc__.splitlines()[0],
                       presets={"smoke": SMOKE})


def run(args: Args) -> dict[str, Any]:
    """The whole study; returns what ``results.json`` holds."""
    import torch

    torch.set_num_threads(1)
    out = Path(args.out or ("results/nmes_rise_smoke" if args.smoke else "results/nmes_rise"))
    t0 = time.perf_counter()
    hand = hand_gains(args, out)
    results = []
    for p in range(args.patients):
        t1 = time.perf_counter()
        results.append(patient(p, args, hand["gains"], out))
        if not args.smoke:
            print(f"patient {p}: {time.perf_counter() - t1:.1f} s", flush=True)
    tab, ident = table(results), ident_table(results)
    result = {"args": asdict(args), "table": tab, "ident": ident, "hand": hand,
              "patients": [{k: v for k, v in r.items() if k not in ("runs", "key")} |
                           {"runs": {c: {k: v for k, v in run.items()
                                         if k not in ("theta_deg", "ref_deg", "pulse_us")}
                                     for c, run in r["runs"].items()}} for r in results],
              "wall_s": time.perf_counter() - t0, "provenance": provenance()}
    _write(out / "results.json", result)
    md = markdown(tab, ident, results, hand["gains"]) + "\n" + format_provenance(
        result["provenance"])
    atomic_write_bytes(out / "results.md", md.encode())
    figure(results[0], out / "figure.png")
    print(md)
    print(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'figure.png'}")
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line entry; Ctrl-C stops with finished patients kept (rerun to resume)."""
    return run_script(lambda: parse_args(argv), _timed_run)


def _timed_run(args: Args) -> int:
    t0 = time.perf_counter()
    run(args)
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
