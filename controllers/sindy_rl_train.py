"""``ctrlbench train sindy-rl PLANT``: SINDy-RL (:func:`controllers.sindy_rl.train_sindy_rl`) as a
training run with the same folder, evaluation and ``sb3:PATH`` controller as SAC.

- the real env is the plant behind the same observation scaling as ``ctrlbench train sac`` (the
  polynomial library is fitted on scaled observations, which keeps it well conditioned);
- ``--steps`` is the budget of **real** interactions (random phase + on-policy rounds); the
  number of rounds follows from it;
- the agent is SB3's SAC (automatic temperature) trained only in the surrogate;
- the reward is fitted (a sparse polynomial of observation, action and next observation) unless
  it is known in closed form: :data:`KNOWN_REWARDS` (gymnasium's ``Pendulum-v1``);
- after every round the agent is evaluated on a fresh real plant with ``simulate`` (not counted
  as training interactions, as for SAC), one ``eval.jsonl`` line with ``step`` = real steps so
  far, and the agent is checkpointed (``checkpoint/``); the real data (``real_data.npz``) and the
  round history (``history.jsonl``) are written at the end.

A run is not resumable (the Dyna loop keeps its data and models in memory); ``--resume`` says so.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from controllers.sb3_callbacks import evaluate, save_checkpoint
from controllers.sb3_policy import NORMALIZE, CheckpointError, ObservationScaler
from controllers.sindy_rl import SindyRLConfig, train_sindy_rl
from ctrlbench.io import atomic_write, atomic_write_bytes
from ctrlbench.options import option
from ctrlbench.training import MODEL, TrainRun

__all__ = ["KNOWN_REWARDS", "SindyRLTrainOptions", "pendulum_reward", "train_sindy_rl_run"]


@dataclass(frozen=True)
class SindyRLTrainOptions(SindyRLConfig):
    """SINDy-RL settings plus the SAC agent trained in the surrogate."""

    label = "sindy-rl"
    agent_net_arch: tuple[int, ...] = option((64, 64), "hidden layers of the SAC agent", ge=1,
                                             le=4096)
    agent_learning_rate: float = option(1e-3, "Adam learning rate of the agent", gt=0.0, le=1.0)
    agent_batch_size: int = option(256, "minibatch size of the agent", ge=1, le=100_000)
    agent_learning_starts: int = option(500, "random surrogate steps before the agent learns",
                                        ge=0, le=10**7)
    agent_gamma: float = option(0.99, "discount factor of the agent", ge=0.0, le=1.0)


def pendulum_reward(x: np.ndarray, u: np.ndarray, x_next: np.ndarray) -> float:
    """Gymnasium ``Pendulum-v1``'s reward from the pre-step observation ``(cos, sin, thdot)``
    and the (clipped) torque: ``-(theta^2 + 0.1 thdot^2 + 0.001 u^2)``."""
    theta = math.atan2(float(x[1]), float(x[0]))
    return -(theta**2 + 0.1 * float(x[2]) ** 2 + 0.001 * float(np.clip(u[0], -2.0, 2.0)) ** 2)


#: Rewards known in closed form, on raw observations: ``id -> reward(x, u, x_next)``.
KNOWN_REWARDS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], float]] = {
    "Pendulum-v1": pendulum_reward,
}


def _on_raw(fn: Callable[..., float], offset: np.ndarray, scale: np.ndarray
            ) -> Callable[[np.ndarray, np.ndarray, np.ndarray], float]:
    """``fn`` on raw observations, called with scaled ones."""

    def reward(x: np.ndarray, u: np.ndarray, xn: np.ndarray) -> float:
        return fn(x / scale + offset, u, xn / scale + offset)

    return reward


def train_sindy_rl_run(run: TrainRun) -> dict[str, Any]:
    """The ``ALGORITHMS`` entry of ``"sindy-rl"`` (see the module docstring)."""
    import torch
    from stable_baselines3 import SAC

    from controllers.sb3_train import learning_env

    if run.resume:
        raise CheckpointError("sindy-rl runs are not resumable (the Dyna loop keeps its models "
                              "in memory); start the run anew with --overwrite")
    torch.set_num_threads(1)
    opts = run.algorithm_options
    assert isinstance(opts, SindyRLTrainOptions)
    s = run.settings
    if s.normalize_obs == "running" or s.normalize_reward:
        raise ValueError("sindy-rl takes normalize_obs = 'bounds' or 'none' and no reward "
                         "normalization (the surrogate is fitted on fixed coordinates)")
    if s.steps <= opts.random_steps:
        raise ValueError(f"sindy-rl: steps = {s.steps} must exceed random_steps = "
                         f"{opts.random_steps} (the real-step budget includes the random phase)")
    env, scaling = learning_env(run, "sac")
    shape = tuple(env.observation_space.shape or ())
    offset = np.asarray(scaling["offset"]) if scaling else np.zeros(shape)
    scale = np.asarray(scaling["scale"]) if scaling else np.ones(shape)
    if scaling is not None:
        atomic_write_bytes(run.out / NORMALIZE, json.dumps(scaling).encode())
    known = KNOWN_REWARDS.get(run.plant)
    reward = _on_raw(known, offset, scale) if known is not None else None
    per_round = max(opts.real_steps_per_round, 1)
    rounds = max(1, math.ceil((s.steps - opts.random_steps) / per_round))
    cfg_fields = {f.name for f in dataclasses.fields(SindyRLConfig)}
    cfg = SindyRLConfig(**{k: v for k, v in opts.to_dict().items() if k in cfg_fields})
    cfg = dataclasses.replace(cfg, seed=s.seed, refits=rounds)
    scaler = ObservationScaler(offset, scale) if scaling else ObservationScaler()
    rows: list[dict[str, Any]] = []

    def make_agent(surrogate: Any) -> Any:
        return SAC("MlpPolicy", surrogate, seed=s.seed, device="cpu", verbose=0,
                   learning_rate=opts.agent_learning_rate, batch_size=opts.agent_batch_size,
                   learning_starts=opts.agent_learning_starts, gamma=opts.agent_gamma,
                   policy_kwargs={"net_arch": list(opts.agent_net_arch)})

    def after_round(i: int, agent: Any, real_steps: int) -> bool:
        save_checkpoint(agent, run.out, None)
        rows.append(evaluate(run, agent, scaler, real_steps))
        return real_steps < s.steps

    try:
        result = train_sindy_rl(env, make_agent, cfg, reward=reward, callback=after_round)
    finally:
        env.close()
    tmp = run.out / f".{MODEL}.tmp.zip"
    result.agent.save(tmp)
    os.replace(tmp, run.out / MODEL)
    x, u, xn, r = result.data.arrays()
    atomic_write(run.out / "real_data.npz",
                 lambda f: np.savez(f, x=x, u=u, x_next=xn, r=r))
    atomic_write_bytes(run.out / "history.jsonl", "".join(
        json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                    for k, v in dataclasses.asdict(h).items()}) + "\n"
        for h in result.history).encode())
    return {"algorithm": run.algorithm, "plant": run.plant, "steps": int(result.real_steps),
            "surrogate_steps": int(result.surrogate_steps), "out": str(run.out),
            "model": str(run.out / MODEL), "last_eval": rows[-1] if rows else None,
            "equations": result.model.equations()}
