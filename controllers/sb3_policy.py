"""A trained Stable-Baselines3 model as a ctrlbench controller (``sb3:PATH``).

``PATH`` is a ``ctrlbench train`` run folder (its ``model.zip``, else its latest checkpoint) or an
SB3 ``.zip`` file. The algorithm is read from the file (the module of its saved policy class:
``stable_baselines3.sac.policies`` -> SAC), so ``ctrlbench run PLANT sb3:runs/sac`` needs no
``--algo``. A run folder also holds how observations were scaled in training (``normalize.json``
or SB3's ``vecnormalize.pkl``); :class:`SB3Policy` applies the same scaling before the model, so
the saved model sees what it saw in training. Actions come out in the plant's units (SB3 maps its
``[-1, 1]`` squashed actions to the Box itself).

Errors are named: a missing or corrupt file, a file that is not an SB3 model, an algorithm this
version does not know, and a model whose observation or action space differs from the plant's.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ctrlbench.options import Options, option

__all__ = ["SB3_ALGORITHMS", "CheckpointError", "SB3Options", "SB3Policy", "algorithm_of",
           "load_model", "make_sb3", "model_file"]

#: SB3 module name -> class name, for reading the algorithm from a saved model.
SB3_ALGORITHMS = {"sac": "SAC", "td3": "TD3", "ppo": "PPO", "a2c": "A2C", "ddpg": "DDPG",
                  "dqn": "DQN"}
NORMALIZE = "normalize.json"
VECNORMALIZE = "vecnormalize.pkl"


class CheckpointError(ValueError):
    """A model or checkpoint file that is missing, corrupt, or does not fit the plant."""


@dataclass(frozen=True)
class SB3Options(Options):
    """Options of the ``"sb3"`` controller (``sb3:PATH`` sets ``path``)."""

    label = "sb3"
    path: str = option("", "a `ctrlbench train` run folder or an SB3 .zip model")
    deterministic: bool = option(True, "use the policy's mean action (no exploration noise)")


def model_file(path: str | Path) -> Path:
    """The model file behind ``path``: a ``.zip``, or a run folder's ``model.zip`` or latest
    checkpoint (``checkpoint/model.zip``)."""
    p = Path(path)
    if p.is_dir():
        for cand in (p / "model.zip", p / "checkpoint" / "model.zip"):
            if cand.is_file():
                return cand
        raise CheckpointError(f"{str(p)!r} holds no trained model (no model.zip and no "
                              f"checkpoint/model.zip): train it first with `ctrlbench train`")
    if not p.is_file():
        raise CheckpointError(f"no model at {str(p)!r}: give a `ctrlbench train` run folder or "
                              f"an SB3 .zip file")
    return p


def algorithm_of(path: str | Path) -> str:
    """The SB3 algorithm that saved ``path`` (``"sac"``, ``"ppo"``, ...), read from the file."""
    file = model_file(path)
    try:
        with zipfile.ZipFile(file) as z:
            data = json.loads(z.read("data"))
        module = data["policy_class"]["__module__"]
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError) as exc:
        raise CheckpointError(f"{file} is not a readable SB3 model ({type(exc).__name__}: "
                              f"{exc}); the file is corrupt or was not saved by SB3") from None
    parts = str(module).split(".")
    algo = parts[1] if len(parts) > 2 and parts[0] == "stable_baselines3" else ""
    if algo == "common":  # on-policy algorithms share the policy classes: tell them apart
        algo = "ppo" if "clip_range" in data else "a2c" if "n_steps" in data else ""
    if algo not in SB3_ALGORITHMS:
        raise CheckpointError(f"{file}: its policy class comes from {module!r}, not a known SB3 "
                              f"algorithm; valid: {', '.join(sorted(SB3_ALGORITHMS))}")
    return algo


def load_model(path: str | Path, env: Any = None, **kwargs: Any) -> Any:
    """Load the SB3 model at ``path`` with the algorithm read from the file."""
    import stable_baselines3

    file = model_file(path)
    cls = getattr(stable_baselines3, SB3_ALGORITHMS[algorithm_of(file)])
    try:
        return cls.load(file, env=env, device="cpu", **kwargs)
    except (zipfile.BadZipFile, KeyError, ValueError, RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"cannot load {file}: {type(exc).__name__}: {exc}") from None


def _same_box(a: Any, b: Any) -> bool:
    return (a.shape == b.shape and np.allclose(a.low, b.low, equal_nan=True)
            and np.allclose(a.high, b.high, equal_nan=True))


class ObservationScaler:
    """``clip((obs - offset) * scale, -clip, clip)``: a training run's observation scaling
    (identity when there was none)."""

    def __init__(self, offset: Any = None, scale: Any = None, clip: float = np.inf) -> None:
        self.offset = None if offset is None else np.asarray(offset, dtype=float)
        self.scale = None if scale is None else np.asarray(scale, dtype=float)
        self.clip = float(clip)

    @classmethod
    def from_vecnormalize(cls, stats: Any) -> ObservationScaler:
        """The current statistics of an SB3 ``VecNormalize`` (observations only)."""
        if not stats.norm_obs:
            return cls()
        rms = stats.obs_rms
        return cls(np.array(rms.mean), 1.0 / np.sqrt(np.asarray(rms.var) + stats.epsilon),
                   stats.clip_obs)

    @classmethod
    def load(cls, folder: Path, observation_space: Any) -> ObservationScaler:
        """The scaling saved next to a model (``normalize.json`` or ``vecnormalize.pkl``)."""
        norm, vec = folder / NORMALIZE, folder / VECNORMALIZE
        out = cls()
        if norm.is_file():
            try:
                d = json.loads(norm.read_text())
                out = cls(d["offset"], d["scale"])
                low, high = np.asarray(d["low"], dtype=float), np.asarray(d["high"], dtype=float)
            except (ValueError, KeyError, TypeError) as exc:
                raise CheckpointError(f"{norm} is corrupt ({type(exc).__name__}: {exc})") from None
            if low.shape != observation_space.shape or not (
                    np.array_equal(low, observation_space.low)
                    and np.array_equal(high, observation_space.high)):
                raise CheckpointError(f"the model in {folder} was trained on observation bounds "
                                      f"{low.tolist()} .. {high.tolist()}, the plant has "
                                      f"{observation_space.low.tolist()} .. "
                                      f"{observation_space.high.tolist()}")
        elif vec.is_file():
            from stable_baselines3.common.vec_env import VecNormalize

            try:
                out = cls.from_vecnormalize(VecNormalize.load(
                    str(vec), cast(Any, _NullVecEnv(observation_space))))
            except Exception as exc:
                raise CheckpointError(f"{vec} is corrupt or does not fit the plant "
                                      f"({type(exc).__name__}: {exc})") from None
        if out.offset is not None and out.offset.shape != observation_space.shape:
            raise CheckpointError(f"the observation scaling in {folder} is for shape "
                                  f"{out.offset.shape}, the plant observes "
                                  f"{observation_space.shape}")
        return out

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """The scaled observation (unchanged without a scaling)."""
        if self.offset is None or self.scale is None:
            return obs
        return np.asarray(np.clip((obs - self.offset) * self.scale, -self.clip, self.clip),
                          dtype=np.float32)


class _NullVecEnv:
    """Just the spaces VecNormalize.load checks against (it never steps the env)."""

    def __init__(self, observation_space: Any) -> None:
        from gymnasium import spaces

        self.observation_space = observation_space
        self.action_space = spaces.Box(-1.0, 1.0, (1,))
        self.num_envs = 1
        self.render_mode = None


class SB3Policy:
    """A trained SB3 model on a plant: scales the observation as in training, then predicts.

    Parameters
    ----------
    model:
        A loaded SB3 algorithm (anything with ``predict``).
    scaler:
        The training run's observation scaling.
    deterministic:
        Mean action instead of a sample.
    """

    def __init__(self, model: Any, scaler: ObservationScaler, deterministic: bool = True
                 ) -> None:
        self.model = model
        self.scaler = scaler
        self.deterministic = deterministic

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None,
                deterministic: bool = True) -> tuple[np.ndarray, Any]:
        """SB3's ``predict`` on the scaled observation (a recurrent state passes through)."""
        obs = self.scaler(np.asarray(observation, dtype=float))
        return self.model.predict(obs, state=state, episode_start=episode_start,  # type: ignore[no-any-return]
                                  deterministic=self.deterministic and deterministic)


def make_sb3(plant: Any, options: SB3Options) -> SB3Policy:
    """The ``"sb3"`` controller: the model at ``options.path`` on ``plant``.

    Raises
    ------
    CheckpointError
        No path, a missing/corrupt model, or spaces that differ from the plant's.
    """
    if not options.path:
        raise CheckpointError("the sb3 controller needs a model: use sb3:PATH (a `ctrlbench "
                              "train` run folder or an SB3 .zip) or --set path=PATH")
    file = model_file(options.path)
    model = load_model(file)
    label = getattr(getattr(plant.unwrapped, "spec", None), "id", "the plant")
    mine, theirs = model.action_space, plant.action_space
    if type(mine) is not type(theirs) or (hasattr(mine, "low") and not _same_box(mine, theirs)):
        raise CheckpointError(f"{file} was trained with action space {mine}, but {label} has "
                              f"{theirs}: the model belongs to another plant or other plant "
                              f"options")
    shape = getattr(model.observation_space, "shape", None)
    if shape != plant.observation_space.shape:
        raise CheckpointError(f"{file} was trained on observations of shape {shape}, but "
                              f"{label} observes {plant.observation_space.shape}: the model "
                              f"belongs to another plant or other plant options")
    return SB3Policy(model, ObservationScaler.load(file.parent, plant.observation_space),
                     options.deterministic)
