"""Per-step cost of the ctrlbench motor plants over the raw gym-electric-motor env step.

For each plant, side by side in one process: ``ctrlbench.registry.make_plant(...)`` (the
ctrlbench plant behind gymnasium's ``OrderEnforcing``) against ``gem.make(GEM_ID,
visualization=())`` (the identical GEM configuration the plant wraps, also behind
``OrderEnforcing``) and, for reference, plain ``gem.make(GEM_ID)`` (adds GEM's dashboard callback).
For the PMSM, whose plant takes dq voltages, also GEM's own route to a dq action: the same env
with GEM's ``DqToAbcActionProcessor``.
Each env is stepped in blocks of ``block`` steps with the same fixed action sequence (small
sinusoids that keep the motor inside its limits; the PMSM anchors get the phase duty cycles the
plant would send), alternating env by env, after ``warmup`` blocks; the script reports the median
per-step time of each and the ratio, then the provenance (commit, command, CPU, threads,
versions). It never asserts: goal overhead <= 10 %.

Run: ``python studies/bench/motor_overhead.py`` (~30 s), ``--smoke`` (~2 s).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import math
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ctrlbench.machine import describe
from ctrlbench.provenance import format_provenance, provenance
from ctrlbench.registry import make_plant


@dataclass(frozen=True)
class Args:
    """Benchmark settings."""

    block: int = 500
    """steps per timed block"""
    repeats: int = 15
    """timed blocks per env"""
    warmup: int = 2
    """untimed blocks per env first"""
    smoke: bool = False
    """tiny version (block 100, 3 repeats, 1 warm-up)"""


def _dq_to_duty(d: float, q: float, eps: float, u_scale: float, u_sup: float) -> np.ndarray:
    """What PMSMCurrent sends to GEM for dq command ``(d, q)`` at angle ``eps``."""
    d, q = d * u_scale, q * u_scale
    c, s = math.cos(eps), math.sin(eps)
    al, be = c * d - s * q, s * d + c * q
    u = np.array([al, -0.5 * al + math.sqrt(3) / 2 * be, -0.5 * al - math.sqrt(3) / 2 * be])
    u -= 0.5 * (u.max() + u.min())
    return np.clip(u * 2.0 / u_sup, -1.0, 1.0)


def _cases(n: int) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(plant id, GEM id, plant actions, GEM abc actions): ``n`` steps from reset, no resets."""
    k = np.arange(n)
    duty = (0.02 * np.sin(2 * np.pi * k / 200.0))[:, None]
    # 0.099 on q balances the back-EMF at 100 rad/s: currents stay far from the limits
    dq = np.stack([0.02 * np.sin(2 * np.pi * k / 150.0), 0.099 + 0.02 * np.cos(k / 40.0)], axis=1)
    eps = (3 * 100.0 * 1e-4 * k + np.pi) % (2 * np.pi) - np.pi  # electrical angle at 100 rad/s
    abc = np.array([_dq_to_duty(a, b, e, 200.0, 300.0) for (a, b), e in zip(dq, eps)])
    return [
        ("ctrlbench/DCSpeed-v0", "Cont-SC-PermExDc-v0", duty, duty),
        ("ctrlbench/PMSMCurrent-v0", "Cont-CC-PMSM-v0", dq, abc),
    ]


def _block(env: Any, actions: np.ndarray, state: dict[str, int]) -> float:
    """Time ``len(actions)`` steps (resets, rare, are included); returns seconds per step."""
    step = env.step
    t0 = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = step(a)
        if terminated or truncated:
            state["resets"] += 1
            env.reset()
    return (time.perf_counter() - t0) / len(actions)


def bench(args: Args) -> list[dict[str, Any]]:
    """Median per-step times per plant and env variant."""
    import gym_electric_motor as gem

    warnings.filterwarnings("ignore")
    block = 100 if args.smoke else args.block
    repeats = 3 if args.smoke else args.repeats
    warmup = 1 if args.smoke else args.warmup
    rows = []
    for plant_id, gem_id, ours_a, gem_a in _cases(block * (warmup + repeats)):
        envs = {
            "ctrlbench": (make_plant(plant_id), ours_a),
            "gem (same config)": (gem.make(gem_id, visualization=()), gem_a),
            "gem.make default": (gem.make(gem_id), gem_a),
        }
        if "PMSM" in gem_id:  # GEM's own dq-action route, normalised to u_sup / 2
            from gym_electric_motor.physical_system_wrappers import DqToAbcActionProcessor

            dq_env = gem.make(gem_id, visualization=(),
                              physical_system_wrappers=(DqToAbcActionProcessor.make("PMSM"),))
            envs["gem + DqToAbcActionProcessor"] = (dq_env, ours_a * 200.0 * 2.0 / 300.0)
        counters = {name: {"resets": 0} for name in envs}
        for env, _ in envs.values():
            env.reset(seed=0)
        times: dict[str, list[float]] = {name: [] for name in envs}
        for r in range(warmup + repeats):
            for name, (env, acts) in envs.items():
                dt = _block(env, acts[r * block : (r + 1) * block], counters[name])
                if r >= warmup:
                    times[name].append(dt)
        med = {name: statistics.median(v) for name, v in times.items()}
        rows.append({"plant": plant_id, "gem": gem_id, "median_s": med, "counters": counters})
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the machine, then one table row per plant and env variant."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--block", type=int, default=Args.block)
    p.add_argument("--repeats", type=int, default=Args.repeats)
    ns = p.parse_args(argv)
    args = Args(block=ns.block, repeats=ns.repeats, smoke=ns.smoke)
    print("machine: " + describe(["numpy", "scipy", "gymnasium", "gym-electric-motor"]))
    print(f"blocks of {100 if args.smoke else args.block} steps, alternating, medians")
    print("| plant | env | median us/step | ratio to GEM same config |")
    print("|---|---|---:|---:|")
    for row in bench(args):
        base = row["median_s"]["gem (same config)"]
        for name, t in row["median_s"].items():
            resets = row["counters"][name]["resets"]
            note = f" ({resets} resets)" if resets else ""
            print(f"| {row['plant']} | {name}{note} | {t * 1e6:.1f} | {t / base:.3f} |")
    print("\n" + format_provenance(provenance()), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
