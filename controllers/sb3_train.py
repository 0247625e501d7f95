"""SAC, TD3 and PPO on any registered plant through Stable-Baselines3 (``ctrlbench train``).

``train_sb3(run)`` is the ``ALGORITHMS`` entry of ``"sac"``, ``"td3"`` and ``"ppo"``:

- the env is the plant as registered (``make_plant``; or any gymnasium id such as
  ``Pendulum-v1``), wrapped for learning only: :class:`~ctrlbench.wrappers.ScaleObservation`
  (``normalize_obs="bounds"``) or SB3's ``VecNormalize`` (``"running"`` and/or
  ``normalize_reward``), then SB3's ``Monitor``; the plant itself is never changed;
- SAC uses automatic entropy tuning with target entropy ``-dim(A)`` (SB3 ``ent_coef="auto"``,
  MODELS.md section 6);
- :class:`~controllers.sb3_callbacks.TrainCallback` evaluates with
  :func:`ctrlbench.simulate.simulate` (control metrics next to the return, ``eval.jsonl`` and
  TensorBoard ``eval/*``), checkpoints model + replay buffer + normalization atomically, and
  stops on a non-finite loss;
- ``resume`` loads the checkpoint (weights, optimizer, replay buffer, normalization) and goes on
  counting steps from it (``reset_num_timesteps=False``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from controllers.sb3_callbacks import TrainCallback, load_checkpoint_dir
from controllers.sb3_policy import NORMALIZE, VECNORMALIZE, CheckpointError
from ctrlbench.io import atomic_write_bytes
from ctrlbench.options import Options, option
from ctrlbench.training import MODEL, TrainRun

__all__ = ["PPOOptions", "SACOptions", "TD3Options", "learning_env", "make_env", "train_sb3"]


@dataclass(frozen=True)
class OffPolicyOptions(Options):
    """What SB3's replay-buffer algorithms (SAC, TD3) share."""

    learning_rate: float = option(3e-4, "Adam learning rate", gt=0.0, le=1.0)
    buffer_size: int = option(100_000, "replay buffer capacity (transitions)", ge=1, le=10**7)
    learning_starts: int = option(1_000, "random-action steps before learning", ge=0, le=10**8)
    batch_size: int = option(256, "minibatch size", ge=1, le=100_000)
    tau: float = option(0.005, "target network soft-update rate", gt=0.0, le=1.0)
    gamma: float = option(0.99, "discount factor", ge=0.0, le=1.0)


@dataclass(frozen=True)
class SACOptions(OffPolicyOptions):
    """Soft actor-critic (Haarnoja et al. 2018) through SB3; automatic temperature."""

    label = "sac"
    train_freq: int = option(1, "environment steps between updates", ge=1, le=100_000)
    gradient_steps: int = option(1, "gradient steps per update", ge=1, le=100_000)
    ent_coef_init: float = option(1.0, "initial entropy temperature (then tuned automatically)",
                                  gt=0.0, le=1e3)
    target_entropy: float | None = option(None, "entropy target (None: -dim(A), SB3 'auto')",
                                          ge=-1e6, le=1e6)
    net_arch: tuple[int, ...] = option((256, 256), "hidden layer sizes of actor and critics",
                                       ge=1, le=4096)


@dataclass(frozen=True)
class TD3Options(OffPolicyOptions):
    """Twin delayed DDPG through SB3, Gaussian exploration noise."""

    label = "td3"
    learning_rate: float = option(1e-3, "Adam learning rate", gt=0.0, le=1.0)
    action_noise: float = option(0.1, "exploration noise std, as a fraction of the half-range "
                                 "of each action", ge=0.0, le=10.0)
    net_arch: tuple[int, ...] = option((400, 300), "hidden layer sizes", ge=1, le=4096)


@dataclass(frozen=True)
class PPOOptions(Options):
    """Proximal policy optimization through SB3."""

    label = "ppo"
    learning_rate: float = option(3e-4, "Adam learning rate", gt=0.0, le=1.0)
    n_steps: int = option(2048, "environment steps per rollout", ge=2, le=10**7)
    batch_size: int = option(64, "minibatch size", ge=2, le=10**7)
    n_epochs: int = option(10, "epochs per rollout", ge=1, le=1000)
    gamma: float = option(0.99, "discount factor", ge=0.0, le=1.0)
    gae_lambda: float = option(0.95, "GAE lambda", ge=0.0, le=1.0)
    clip_range: float = option(0.2, "PPO clip range", gt=0.0, le=10.0)
    ent_coef: float = option(0.0, "entropy bonus", ge=0.0, le=10.0)
    log_std_init: float = option(0.0, "initial log std of the Gaussian policy (0: std 1, SB3's "
                                 "default; match it to the action range, e.g. log 0.05 for "
                                 "actions in [-0.1, 0.1])", ge=-20.0, le=5.0)
    net_arch: tuple[int, ...] = option((64, 64), "hidden layer sizes", ge=1, le=4096)


#: Algorithms that need a continuous (Box) action space.
_CONTINUOUS = ("sac", "td3")


def make_env(plant: str, plant_options: dict[str, Any] | None = None) -> gym.Env[Any, Any]:
    """The plant (``make_plant``) or, for a non-ctrlbench gymnasium id, ``gymnasium.make``."""
    from ctrlbench.registry import PLANTS, make_plant

    if plant.startswith("ctrlbench/") or f"ctrlbench/{plant}" in PLANTS:
        return make_plant(plant, **(plant_options or {}))  # type: ignore[no-any-return]
    if plant_options:
        return gym.make(plant, **plant_options)
    return gym.make(plant)


def _check_spaces(algorithm: str, env: gym.Env[Any, Any], plant: str) -> None:
    space = env.action_space
    if algorithm in _CONTINUOUS and not isinstance(space, gym.spaces.Box):
        raise ValueError(f"{algorithm} needs a continuous Box action space; {plant} has {space} "
                         f"(use ppo for discrete actions)")
    if isinstance(space, gym.spaces.Box) and not (np.all(np.isfinite(space.low))
                                                  and np.all(np.isfinite(space.high))):
        raise ValueError(f"{algorithm} needs finite action bounds; {plant} has {space}")
    if not isinstance(env.observation_space, gym.spaces.Box):
        raise ValueError(f"{algorithm} here takes a Box observation space; {plant} has "
                         f"{env.observation_space}")


def learning_env(run: TrainRun, algorithm: str | None = None
                 ) -> tuple[gym.Env[Any, Any], dict[str, Any] | None]:
    """The plant as a learning agent sees it, and the ``"bounds"`` observation map (``None``
    unless ``normalize_obs="bounds"``), as saved in ``normalize.json`` for ``sb3:PATH``.

    ``algorithm`` (default the run's) decides which action spaces are accepted.
    """
    from ctrlbench.wrappers import ScaleObservation

    env = make_env(run.plant, dict(run.plant_options))
    _check_spaces(algorithm or run.algorithm, env, run.plant)
    raw = env.observation_space
    if run.settings.normalize_obs != "bounds":
        return env, None
    assert isinstance(raw, gym.spaces.Box)  # _check_spaces made sure
    scaled = ScaleObservation(env)
    return scaled, {"mode": "bounds", "offset": scaled.offset.tolist(),
                    "scale": scaled.scale.tolist(), "low": raw.low.tolist(),
                    "high": raw.high.tolist()}


def _vec_env(run: TrainRun, seed: int) -> tuple[Any, dict[str, Any] | None]:
    """The training VecEnv and, for ``"bounds"`` scaling, the saved map.

    ``n_envs > 1`` on a plant registered with a vector entry point steps the copies in one
    batched pass (:class:`~controllers.sb3_vector.SB3VectorEnv`); otherwise copies of the
    plant in SB3's ``DummyVecEnv``.
    """
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

    n = run.settings.n_envs
    if n > 1 and _has_vector_entry(run.plant):
        _, scaling = learning_env(run)  # checks the spaces; the map the batch applies too
        return _batched_env(run, seed, scaling), scaling

    envs, scaling = [], None
    for i in range(n):
        env, scaling = learning_env(run)
        env = Monitor(env)
        env.reset(seed=seed + i)
        env.action_space.seed(seed + i)
        envs.append(env)
    venv = DummyVecEnv([lambda e=e: e for e in envs])  # type: ignore[misc]
    return (venv if n == 1 else VecMonitor(venv)), scaling


def _has_vector_entry(plant: str) -> bool:
    from ctrlbench.registry import PLANTS

    full = plant if plant.startswith("ctrlbench/") else f"ctrlbench/{plant}"
    return full in PLANTS and gym.spec(full).vector_entry_point is not None


def _batched_env(run: TrainRun, seed: int, scaling: dict[str, Any] | None) -> Any:
    """The plant's batched env as an SB3 VecEnv, applying the ``"bounds"`` map ``scaling``."""
    from stable_baselines3.common.vec_env import VecMonitor

    from controllers.sb3_vector import SB3VectorEnv

    full = run.plant if run.plant.startswith("ctrlbench/") else f"ctrlbench/{run.plant}"
    venv = gym.make_vec(full, num_envs=run.settings.n_envs,
                        vectorization_mode="vector_entry_point", **dict(run.plant_options))
    offset = scale = None
    if scaling is not None:
        offset, scale = np.asarray(scaling["offset"]), np.asarray(scaling["scale"])
    adapter = SB3VectorEnv(venv, offset, scale)
    adapter.seed(seed)
    return VecMonitor(adapter)


def _algorithm(run: TrainRun, venv: Any) -> Any:
    import stable_baselines3 as sb3
    from stable_baselines3.common.noise import NormalActionNoise

    opts = run.algorithm_options
    assert opts is not None
    kw = opts.to_dict()
    policy_kwargs = {"net_arch": list(kw.pop("net_arch"))}
    tb = str(run.out / "tb") if run.settings.tensorboard else None
    common: dict[str, Any] = dict(policy_kwargs=policy_kwargs, seed=run.settings.seed, device="cpu",
                  tensorboard_log=tb, verbose=0)
    if run.algorithm == "sac":
        init = kw.pop("ent_coef_init")
        target = kw.pop("target_entropy")
        return sb3.SAC("MlpPolicy", venv, ent_coef=f"auto_{init}",
                       target_entropy="auto" if target is None else target, **kw, **common)
    if run.algorithm == "td3":
        sigma = kw.pop("action_noise")
        space = venv.action_space
        half = 0.5 * (space.high - space.low)
        noise = NormalActionNoise(np.zeros(space.shape), sigma * half)
        return sb3.TD3("MlpPolicy", venv, action_noise=noise, **kw, **common)
    if run.algorithm == "ppo":
        policy_kwargs["log_std_init"] = kw.pop("log_std_init")
        return sb3.PPO("MlpPolicy", venv, **kw, **common)
    raise ValueError(f"train_sb3 does not train {run.algorithm!r}; valid: ppo, sac, td3")


def train_sb3(run: TrainRun) -> dict[str, Any]:
    """Train (or resume) ``run`` and return a summary: steps, the last evaluation, the files.

    Raises
    ------
    ValueError
        The plant lacks a continuous Box action space where the algorithm needs one.
    CheckpointError
        ``resume`` with a missing, corrupt or mismatched checkpoint.
    NonFiniteLossError
        A loss became NaN/inf (the last checkpoint is kept).
    """
    import torch
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    s = run.settings
    venv, scaling = _vec_env(run, s.seed)
    vecnorm = s.normalize_obs == "running" or s.normalize_reward
    if scaling is not None:
        atomic_write_bytes(run.out / NORMALIZE, json.dumps(scaling).encode())
    ckpt = load_checkpoint_dir(run.out) if run.resume else None
    if run.resume and ckpt is None:
        raise CheckpointError(f"nothing to resume in {run.out}: no checkpoint was saved yet "
                              f"(checkpoint_every={s.checkpoint_every}); start the run anew "
                              f"with --overwrite")
    if vecnorm:
        if ckpt is not None and (ckpt / VECNORMALIZE).is_file():
            venv = VecNormalize.load(str(ckpt / VECNORMALIZE), venv)
            venv.training = True
        else:
            venv = VecNormalize(venv, norm_obs=s.normalize_obs == "running",
                                norm_reward=s.normalize_reward, gamma=_gamma(run))
    if ckpt is not None:
        model = _resume(run, ckpt, venv)
        _drop_evaluations_after(run.out, int(model.num_timesteps))
    else:
        model = _algorithm(run, venv)
    done = int(model.num_timesteps)
    callback = TrainCallback(run, scaling)
    if done < s.steps:
        model.learn(total_timesteps=s.steps - done, callback=callback,
                    reset_num_timesteps=ckpt is None, tb_log_name="run",
                    progress_bar=s.progress_bar)
    callback.finish(model)
    tmp = run.out / f".{MODEL}.tmp.zip"
    model.save(tmp)
    os.replace(tmp, run.out / MODEL)
    if isinstance(venv, VecNormalize):
        venv.save(str(run.out / VECNORMALIZE))
    return {"algorithm": run.algorithm, "plant": run.plant, "steps": int(model.num_timesteps),
            "out": str(run.out), "model": str(run.out / MODEL), "last_eval": callback.last_eval}


def _drop_evaluations_after(out: Path, step: int) -> None:
    """Keep the evaluations up to the checkpoint a resumed run restarts from."""
    from ctrlbench.training import EVAL_LOG, load_eval_log

    rows = [r for r in load_eval_log(out) if isinstance(r.get("step"), int) and r["step"] <= step]
    if (out / EVAL_LOG).exists():
        atomic_write_bytes(out / EVAL_LOG, "".join(json.dumps(r) + "\n" for r in rows).encode())


def _gamma(run: TrainRun) -> float:
    return float(getattr(run.algorithm_options, "gamma", 0.99))


def _resume(run: TrainRun, ckpt: Path, venv: Any) -> Any:
    from controllers.sb3_policy import algorithm_of, load_model

    algo = algorithm_of(ckpt / MODEL)
    if algo != run.algorithm:
        raise CheckpointError(f"{ckpt / MODEL} was saved by {algo}, not {run.algorithm}")
    tb = str(run.out / "tb") if run.settings.tensorboard else None
    model = load_model(ckpt / MODEL, env=venv, tensorboard_log=tb)
    buffer = ckpt / "replay_buffer.pkl"
    if hasattr(model, "replay_buffer"):
        if not buffer.is_file():
            raise CheckpointError(f"{ckpt} has no replay_buffer.pkl: the checkpoint is "
                                  f"incomplete; start the run anew with --overwrite")
        try:
            model.load_replay_buffer(buffer)
        except Exception as exc:
            raise CheckpointError(f"{buffer} is corrupt ({type(exc).__name__}: {exc})") from None
    return model
