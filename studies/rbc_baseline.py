"""Rayleigh–Bénard convection without control and under the segment PD law (issue 11).

Three parts, each a resumable cell written atomically to ``results/rbc_baseline/cells/``
(a rerun skips finished cells):

1. **uncontrolled**: the authors' random start (seeds ``0 .. seeds-1``, one batched solver call)
   run for ``t_end`` (400) time units: physical Nusselt number (wall heat flux over the
   conductive flux), the authors' probe Nusselt number and the roll count every action period
   (1.5); which start leads to which steady state.
2. **convergence**: the developed flow of seed 0 (t = ``t_end``) continued for ``t_extra``
   time units three ways: as it is, with dt halved, and interpolated (spectrally) onto a grid
   1.5 times finer in both directions (at dt/2, which 96 Chebyshev points need); relative change
   of the final physical and probe Nusselt numbers. (Starting the finer grid from the random
   start instead would draw different noise and may land in another roll state.)
3. **control**: from the cached developed start (``ctrlbench/RBC-v0``, the authors' episode),
   200 actions of each controller (``zero``: uncontrolled; ``rbc-pd`` at ``kp`` values;
   ``rbc-mode``: open-loop ``cos(m x)`` heating for the first 100 actions), then ``after`` more
   actions of zero heating (does the controlled state persist?).

Figures: Nusselt numbers over time, temperature snapshots. ``results.json`` / ``results.md``
carry the provenance. ``--smoke`` runs a coarse grid for seconds (the tests run it).

Run: ``python studies/rbc_baseline.py`` (about 10 min on one core).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctrlbench.interrupt import run_script
from ctrlbench.io import atomic_write_bytes, save_figure
from ctrlbench.options import OptionError, Options, option, parse_flags
from ctrlbench.provenance import format_provenance, provenance

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Args(Options):
    """Study settings."""

    label = "rbc_baseline"
    nx: int = option(96, "Fourier points", ge=8, le=512)
    ny: int = option(64, "Chebyshev points", ge=8, le=256)
    dt: float = option(0.05, "time step", gt=0.0, le=0.5)
    t_end: float = option(400.0, "uncontrolled run length [time units]", gt=0.0, le=1e5)
    seeds: int = option(4, "random starts in the uncontrolled part", ge=1, le=64)
    modes: tuple[int, ...] = option((1, 2, 3), "starts with a cos(m x) temperature "
                                    "perturbation (2 m rolls), uncontrolled part", ge=1, le=16)
    actions: int = option(200, "actions per control run (the plant's episode: at most 200)",
                          ge=1, le=200)
    after: int = option(100, "zero-heating actions after each control run", ge=0,
                        le=10_000)
    kp: tuple[float, ...] = option((5.0, -5.0), "PD gains tried", ge=-1e3, le=1e3)
    force: tuple[int, ...] = option((1,), "open-loop mode forcings tried (rbc-mode m, on for "
                                    "the first half of the actions)", ge=1, le=5)
    convergence: bool = option(True, "run the dt / resolution convergence part")
    t_extra: float = option(100.0, "convergence runs: time units after the developed state",
                            gt=0.0, le=1e4)
    smoke: bool = option(False, "seconds-long version on a coarse grid")
    out: str = option("results/rbc_baseline", "output folder")

    def __post_init__(self) -> None:
        super().__post_init__()
        bad = [m for m in self.modes if m >= self.nx // 2]
        if bad:
            raise OptionError(f"{self.label}.modes = {bad}: a mode must be below nx/2 = "
                              f"{self.nx // 2}")


SMOKE = {"nx": 16, "ny": 12, "t_end": 1.5, "seeds": 2, "modes": (1,), "actions": 2, "after": 2,
         "t_extra": 1.5, "kp": (5.0,), "force": (1,), "out": "results/rbc_baseline_smoke"}
PERIOD = 1.5


def _write(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1, default=float).encode())


def _cell(out: Path, name: str, config: dict[str, Any], compute: Any) -> dict[str, Any]:
    """The cell's saved result when it was computed with the same ``config``, else compute
    and save it (the study's resume unit)."""
    path = out / "cells" / f"{name}.json"
    config = json.loads(json.dumps(config))          # tuples as lists, as saved
    if path.exists():
        saved: dict[str, Any] = json.loads(path.read_text())
        if saved.get("config") == config:
            print(f"[{name}] done before, skipped")
            return saved
        print(f"[{name}] saved with other settings ({saved.get('config')}), recomputed")
    t0 = time.perf_counter()
    result = compute()
    result["config"] = config
    result["wall_s"] = time.perf_counter() - t0
    _write(path, result)
    print(f"[{name}] {result['wall_s']:.0f} s")
    return dict(result)


def uncontrolled(nx: int, ny: int, dt: float, t_end: float, seeds: list[int],
                 modes: tuple[int, ...] = ()) -> dict[str, Any]:
    """Nusselt numbers and rolls every 1.5 time units from the authors' start, per seed; with
    ``modes``, one flow per mode ``m`` instead, started from the authors' start (seed 0) plus
    ``0.05 cos(m x) (1 - y^2)`` on the temperature (``2 m`` rolls at first)."""
    import torch

    from plants.rbc.model import RBCParams
    from plants.rbc.solver import SpectralRBC
    from plants.rbc.start import flow_summary

    torch.set_num_threads(1)
    params = RBCParams(nx=nx, ny=ny, dt=dt)
    flows = []
    for seed in seeds:                      # each its own noise, then one batched run
        one = SpectralRBC(params, batch=1)
        one.authors_start(noise=1e-3, seed=seed)
        flows.append(one.get_state())
    for m in modes:
        one = SpectralRBC(params, batch=1)
        one.authors_start(noise=1e-3, seed=0)
        state = one.get_state()
        state.temp[0, :, m] += 0.025 * (1.0 - one.y**2)   # 0.05 cos(m x): half on mode +m
        flows.append(state)
    from plants.rbc.solver import FlowState

    solver = SpectralRBC(params, batch=len(flows))
    solver.set_state(FlowState.stack(flows))
    per = round(PERIOD / dt)
    series: dict[str, list[list[float]]] = {}
    times = []
    for _ in range(round(t_end / PERIOD)):
        solver.step(per)
        times.append(float(solver.time[0]))
        for key, val in flow_summary(solver).items():
            series.setdefault(key, []).append(list(val))
    final = {k: v[-1] for k, v in series.items()}
    tail = max(1, len(times) // 8)
    tail_mean = {k: np.mean(np.asarray(v[-tail:]), axis=0).tolist() for k, v in series.items()
                 if k != "rolls"}
    fields = solver.fields(x=2 * np.pi * np.arange(128) / 128, y=np.linspace(1, -1, 64))
    return {"seeds": seeds, "modes": list(modes), "grid": [nx, ny], "dt": dt, "t": times,
            "series": series,
            "final": final, "tail_mean": tail_mean, "blown_up": solver.blown_up.tolist(),
            "T_snapshot": fields[:, 2].tolist()}


def continued(nx: int, ny: int, dt: float, t_end: float, t_extra: float, grid: tuple[int, int],
              step: float) -> dict[str, Any]:
    """The developed seed-0 flow (``nx x ny``, ``dt``, age ``t_end``, from the cache) moved to
    ``grid`` and run ``t_extra`` more time units with time step ``step``."""
    import torch

    from plants.rbc.model import RBCParams
    from plants.rbc.solver import SpectralRBC
    from plants.rbc.start import developed_state, flow_summary

    torch.set_num_threads(1)
    state, _ = developed_state(RBCParams(nx=nx, ny=ny, dt=dt), t_end, seed=0, noise=1e-3)
    params = RBCParams(nx=grid[0], ny=grid[1], dt=step)
    solver = SpectralRBC(params, batch=1)
    solver.set_state(state.regrid(params.ny, params.nx // 2))
    solver.step(round(t_extra / step))
    final = {k: v[0] for k, v in flow_summary(solver).items()}
    return {"grid": list(grid), "dt": step, "t": float(solver.time[0]), "final": final,
            "blown_up": bool(solver.blown_up[0])}


def control_run(controller: str, options: dict[str, Any], plant_opts: dict[str, Any],
                actions: int, after: int) -> dict[str, Any]:
    """``actions`` steps of ``controller`` from the developed start, then ``after`` of zero."""
    import torch

    from ctrlbench.registry import make_controller, make_plant
    from ctrlbench.simulate import simulate

    torch.set_num_threads(1)
    plant = make_plant("ctrlbench/RBC-v0", **plant_opts)
    ctrl = make_controller(controller, plant, **options)
    traj = simulate(plant, ctrl, steps=actions, seed=0)
    rec: dict[str, Any] = {k: traj.info[k].tolist()
                           for k in ("nu_probe", "nu_physical", "rolls", "time")
                           if k in traj.info}
    rec["actions"] = traj.actions.tolist()
    sim = plant.unwrapped.sim
    rec["T_snapshot"] = sim.snapshot()[0, 2].tolist()
    if after:
        zero = np.zeros(10)
        env = plant.unwrapped          # the same episode, past the registered 200-action limit
        for _ in range(after):
            _, _, term, _, info = env.step(zero)
            for k in ("nu_probe", "nu_physical", "rolls", "time"):
                rec.setdefault(f"after_{k}", []).append(info[k])
            if term:
                break
    n = len(rec["nu_probe"])
    half = slice(n // 2, None)
    rec["summary"] = {"nu_probe_2nd_half": float(np.mean(rec["nu_probe"][half])),
                      "nu_physical_2nd_half": float(np.mean(rec["nu_physical"][half])),
                      "rolls_end": int(rec["rolls"][-1]),
                      "nu_probe_first": float(rec["nu_probe"][0]),
                      "nu_physical_after_end": float(rec["after_nu_physical"][-1])
                      if after else None,
                      "rolls_after_end": int(rec["after_rolls"][-1]) if after else None}
    plant.close()
    return rec


def _figures(out: Path, unc: dict[str, Any], ctrl: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    t = np.asarray(unc["t"])
    for key, ax in (("nu_volume", axes[0]), ("nu_probe", axes[1])):
        vals = np.asarray(unc["series"][key])
        for j, seed in enumerate(unc["seeds"]):
            ax.plot(t, vals[:, j], label=f"seed {seed} ({unc['final']['rolls'][j]} rolls)")
        ax.set_xlabel("time")
        ax.set_title({"nu_volume": "physical Nu (volume)", "nu_probe": "probe Nu"}[key])
    axes[1].legend(fontsize=7)
    save_figure(fig, out / "uncontrolled_nu.png")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, rec in ctrl.items():
        nt = np.asarray(rec["time"] + rec.get("after_time", []))
        for key, ax in (("nu_physical", axes[0]), ("nu_probe", axes[1])):
            ax.plot(nt, rec[key] + rec.get(f"after_{key}", []), label=name)
            ax.set_title(f"{key} (control, then zero heating)")
            ax.set_xlabel("time")
    axes[1].legend(fontsize=7)
    save_figure(fig, out / "control_nu.png")
    snaps = [("uncontrolled seed " + str(s), np.asarray(unc["T_snapshot"][j]))
             for j, s in enumerate(unc["seeds"][:2])]
    snaps += [(name, np.asarray(rec["T_snapshot"])) for name, rec in ctrl.items()]
    fig, axes = plt.subplots(len(snaps), 1, figsize=(6, 1.9 * len(snaps)), constrained_layout=True)
    for ax, (name, field) in zip(np.atleast_1d(axes), snaps):
        ax.imshow(field, extent=(0, 2 * np.pi, -1, 1), cmap="coolwarm", vmin=1.0, vmax=2.0,
                  aspect="auto")
        ax.set_title(f"T: {name}", fontsize=8)
    save_figure(fig, out / "temperature.png")


def _markdown(unc: dict[str, Any], modes: dict[str, Any] | None, conv: dict[str, Any] | None,
              ctrl: dict[str, dict[str, Any]], args: Args) -> str:
    lines = [f"# Rayleigh–Bénard baseline ({args.nx} x {args.ny}, dt {args.dt})", "",
             f"## Uncontrolled, t = {unc['t'][-1]:.1f} from the authors' start", "",
             "| seed | rolls | physical Nu (bottom / top / volume) | probe Nu |",
             "|---:|---:|---|---:|"]
    f = unc["final"]
    for j, seed in enumerate(unc["seeds"]):
        lines.append(f"| {seed} | {f['rolls'][j]} | {f['nu_bottom'][j]:.4f} / "
                     f"{f['nu_top'][j]:.4f} / {f['nu_volume'][j]:.4f} | {f['nu_probe'][j]:.4f} |")
    if modes:
        g = modes["final"]
        lines += ["", "Seed 0 plus 0.05 cos(m x) (1 - y^2) on the temperature:", "",
                  "| m | rolls | physical Nu (bottom / top / volume) | probe Nu |",
                  "|---:|---:|---|---:|"]
        for j, m in enumerate(modes["modes"]):
            lines.append(f"| {m} | {g['rolls'][j]} | {g['nu_bottom'][j]:.4f} / "
                         f"{g['nu_top'][j]:.4f} / {g['nu_volume'][j]:.4f} | "
                         f"{g['nu_probe'][j]:.4f} |")
    if conv:
        lines += ["", f"## Convergence: seed 0 developed to t = {conv['t_end']:g}, then "
                  f"{conv['t_extra']:g} more", "",
                  "| run | rolls | physical Nu | probe Nu | change vs base (phys / probe) |",
                  "|---|---:|---:|---:|---|"]
        base = conv["runs"]["base"]
        for name, r in conv["runs"].items():
            d1 = (r["nu_bottom"] - base["nu_bottom"]) / base["nu_bottom"]
            d2 = (r["nu_probe"] - base["nu_probe"]) / base["nu_probe"]
            lines.append(f"| {name} ({r['grid'][0]} x {r['grid'][1]}, dt {r['dt']:g}) | "
                         f"{r['rolls']} | {r['nu_bottom']:.5f} | "
                         f"{r['nu_probe']:.5f} | {100 * d1:+.3f} % / {100 * d2:+.3f} % |")
    lines += ["", f"## Control from the developed start ({args.actions} actions, then "
              f"{args.after} of zero heating)", "",
              "| controller | probe Nu (1st action) | probe Nu (2nd half) | "
              "physical Nu (2nd half) | "
              "rolls at end | physical Nu after | rolls after |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for name, rec in ctrl.items():
        s = rec["summary"]
        after = "-" if s["nu_physical_after_end"] is None else f"{s['nu_physical_after_end']:.4f}"
        lines.append(f"| {name} | {s['nu_probe_first']:.4f} | {s['nu_probe_2nd_half']:.4f} | "
                     f"{s['nu_physical_2nd_half']:.4f} | {s['rolls_end']} | {after} | "
                     f"{s['rolls_after_end']} |")
    return "\n".join(lines) + "\n"


def run(args: Args) -> int:
    """The three parts, figures and the summary."""
    out = ROOT / args.out
    seeds = list(range(args.seeds))
    grid = {"nx": args.nx, "ny": args.ny, "dt": args.dt, "t_end": args.t_end}
    unc = _cell(out, "uncontrolled", {**grid, "seeds": seeds}, lambda: uncontrolled(
        args.nx, args.ny, args.dt, args.t_end, seeds))
    modes = _cell(out, "uncontrolled_modes", {**grid, "modes": args.modes}, lambda: uncontrolled(
        args.nx, args.ny, args.dt, args.t_end, [], args.modes)) if args.modes else None
    conv: dict[str, Any] | None = None
    if args.convergence:
        fine = (3 * args.nx // 2 + (3 * args.nx // 2) % 2, 3 * args.ny // 2)
        # the finer grid at dt/2: at 96 Chebyshev points dt = 0.05 is past the explicit
        # advection's stability limit (it drifts to a garbage state; 80 points hold at 0.05)
        runs = {"base": ((args.nx, args.ny), args.dt), "dt/2": ((args.nx, args.ny), args.dt / 2),
                "grid x1.5": (fine, args.dt / 2)}
        conv = {"t_end": args.t_end, "t_extra": args.t_extra, "runs": {}}
        for name, (to, step) in runs.items():
            key = "continued_" + name.replace("/", "_").replace(" ", "_").replace(".", "_")
            cfg = {**grid, "t_extra": args.t_extra, "to": to, "step": step}
            res = _cell(out, key, cfg, lambda to=to, step=step: continued(
                args.nx, args.ny, args.dt, args.t_end, args.t_extra, to, step))
            conv["runs"][name] = {**res["final"], "grid": res["grid"], "dt": res["dt"]}
    plant_opts: dict[str, Any] = {"nx": args.nx, "ny": args.ny, "dt": args.dt,
                                  "start_time": args.t_end}
    ctrl: dict[str, dict[str, Any]] = {}
    specs: list[tuple[str, str, dict[str, Any]]] = [("zero", "zero", {})]
    specs += [(f"rbc-pd kp={kp:g}", "rbc-pd", {"kp": kp}) for kp in args.kp]
    specs += [(f"rbc-mode m={m} (first {args.actions // 2})", "rbc-mode",
               {"m": m, "duration": max(1, args.actions // 2)}) for m in args.force]
    for name, controller, options in specs:
        key = "control_" + "".join(c if c.isalnum() else "_" for c in name)
        cfg = {"plant": plant_opts, "controller": controller, "options": options,
               "actions": args.actions, "after": args.after}
        ctrl[name] = _cell(out, key, cfg, lambda c=controller, o=options: control_run(
            c, o, plant_opts, args.actions, args.after))
    _figures(out, unc, ctrl)
    prov = provenance()
    md = _markdown(unc, modes, conv, ctrl, args) + "\n" + format_provenance(prov)
    atomic_write_bytes(out / "results.md", md.encode())
    slim_unc = {k: v for k, v in unc.items() if k not in ("T_snapshot", "series")}
    slim_ctrl = {n: {k: v for k, v in r.items() if k != "T_snapshot"} for n, r in ctrl.items()}
    slim_modes = ({k: v for k, v in modes.items() if k not in ("T_snapshot", "series")}
                  if modes else None)
    _write(out / "results.json", {"args": asdict(args), "uncontrolled": slim_unc,
                                  "uncontrolled_modes": slim_modes,
                                  "convergence": conv, "control": slim_ctrl,
                                  "provenance": prov})
    print(md)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse flags and run."""
    return run_script(lambda: parse_flags(Args, argv, description=__doc__.splitlines()[0],
                                          presets={"smoke": SMOKE}), run)


if __name__ == "__main__":
    sys.exit(main())
