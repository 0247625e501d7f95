"""SAC environment steps per second: a ctrlbench plant as ``ctrlbench train`` builds it vs the
same plant's raw gym-electric-motor env, both under Stable-Baselines3, side by side in one run.

- **ctrlbench**: ``ctrlbench/DCSpeed-v0`` through ``controllers.sb3_train`` exactly as
  ``ctrlbench train sac DCSpeed-v0`` wraps it (``make_plant`` with action validation, the
  observation scaling wrapper, SB3's ``Monitor`` and ``DummyVecEnv``);
- **raw GEM**: ``gem.make("Cont-SC-PermExDc-v0", visualization=())`` (the configuration the plant
  wraps) with gymnasium's ``FlattenObservation`` (its observation is a (state, reference)
  tuple), ``Monitor`` and ``DummyVecEnv``.

Both get the same SAC (same seed, networks and hyper-parameters). After ``learning_starts``
random steps and a warm-up block, ``learn(block)`` is timed alternately, env by env, ``repeats``
times; the script prints the median steps/s of each and the ctrlbench overhead
``time_ctrlbench / time_raw - 1``. A second table times the envs alone (random actions, no
learning), where the wrapper cost is not hidden behind SAC's gradient steps, and ends with the
provenance (commit, command, CPU, threads, versions). It never asserts: goal overhead <= 10 %.

Run: ``python studies/bench/sac_throughput.py`` (~3 min), ``--smoke`` (~15 s).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ctrlbench.machine import describe
from ctrlbench.options import Options, option, parse_flags
from ctrlbench.provenance import format_provenance, provenance

PLANT = "ctrlbench/DCSpeed-v0"
GEM_ID = "Cont-SC-PermExDc-v0"


@dataclass(frozen=True)
class Args(Options):
    """Benchmark settings."""

    label = "sac_throughput"
    block: int = option(500, "SAC steps per timed block", ge=10, le=10**6)
    repeats: int = option(7, "timed blocks per env", ge=1, le=1000)
    learning_starts: int = option(200, "random steps before learning (untimed)", ge=1, le=10**6)
    env_steps: int = option(20_000, "steps of the env-only timing (per env and repeat)", ge=10,
                            le=10**7)
    smoke: bool = option(False, "seconds-long version (tiny blocks)")


SMOKE = {"block": 50, "repeats": 1, "learning_starts": 50, "env_steps": 1000}


def _ctrlbench_env(seed: int) -> Any:
    from controllers.sb3_train import _vec_env
    from ctrlbench.training import TrainRun, TrainSettings

    run = TrainRun("sac", PLANT, Path("."), TrainSettings(tensorboard=False))
    venv, _ = _vec_env(run, seed)
    return venv


def _raw_env(seed: int) -> Any:
    import gym_electric_motor as gem
    from gymnasium.wrappers import FlattenObservation
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    env = Monitor(FlattenObservation(gem.make(GEM_ID, visualization=())))
    env.reset(seed=seed)
    return DummyVecEnv([lambda: env])


def _sac(venv: Any, args: Args) -> Any:
    from stable_baselines3 import SAC

    return SAC("MlpPolicy", venv, seed=0, device="cpu", learning_starts=args.learning_starts,
               buffer_size=100_000, verbose=0)


def _env_only(venv: Any, steps: int) -> float:
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1.0, 1.0, (steps, 1, 1)).astype(np.float32)
    venv.reset()
    t0 = time.perf_counter()
    for a in acts:
        venv.step(a)
    return (time.perf_counter() - t0) / steps


def bench(args: Args) -> dict[str, dict[str, float]]:
    """Median seconds per step of SAC training and of the env alone, per env."""
    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    envs = {"ctrlbench": _ctrlbench_env(0), "raw GEM": _raw_env(0)}
    models = {name: _sac(venv, args) for name, venv in envs.items()}
    for model in models.values():  # random warm-up and one learning block, untimed
        model.learn(args.learning_starts + args.block)
    sac: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(args.repeats):
        for name, model in models.items():
            t0 = time.perf_counter()
            model.learn(args.block, reset_num_timesteps=False)
            sac[name].append((time.perf_counter() - t0) / args.block)
    alone: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(max(3, args.repeats // 2)):
        for name, venv in envs.items():
            alone[name].append(_env_only(venv, args.env_steps))
    return {"sac": {k: statistics.median(v) for k, v in sac.items()},
            "env": {k: statistics.median(v) for k, v in alone.items()}}


def main(argv: list[str] | None = None) -> int:
    """Print the machine and the two tables."""
    args = parse_flags(Args, argv, description=__doc__.splitlines()[0], presets={"smoke": SMOKE})
    t0 = time.perf_counter()
    res = bench(args)
    print("machine: " + describe(["numpy", "torch", "gymnasium", "stable-baselines3",
                                    "gym-electric-motor"], "1 torch thread"))
    print(f"SB3 SAC on {PLANT} (ctrlbench train's env) vs raw GEM {GEM_ID}; block {args.block}, "
          f"repeats {args.repeats}, 1 torch thread\n")
    for title, key in (("SAC training", "sac"), ("env alone, random actions", "env")):
        ours, raw = res[key]["ctrlbench"], res[key]["raw GEM"]
        print(f"| {title} | steps/s | time per step [us] |\n|---|---|---|")
        print(f"| ctrlbench | {1 / ours:,.0f} | {ours * 1e6:,.1f} |")
        print(f"| raw GEM | {1 / raw:,.0f} | {raw * 1e6:,.1f} |")
        print(f"| overhead | {100 * (ours / raw - 1):+.1f} % | |\n")
    print(f"wall {time.perf_counter() - t0:.0f} s\n")
    print(format_provenance(provenance()), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
