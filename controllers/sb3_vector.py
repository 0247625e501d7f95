"""A batched plant (``gymnasium.vector.VectorEnv``) as a Stable-Baselines3 ``VecEnv``.

A plant registered with a ``vector_entry_point`` steps N copies in one batched pass
(``gymnasium.make_vec(id, N, vectorization_mode="vector_entry_point")``). SB3 trains on its own
``VecEnv`` interface; :class:`SB3VectorEnv` adapts one to the other without copying a plant:
gymnasium's same-step autoreset becomes SB3's (``infos[i]["terminal_observation"]`` and
``"TimeLimit.truncated"``), and an optional affine observation map (the ``"bounds"`` scaling of
:func:`ctrlbench.wrappers.box_scaling`) is applied on the way out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

__all__ = ["SB3VectorEnv"]


class SB3VectorEnv(VecEnv):
    """SB3 ``VecEnv`` over a gymnasium ``VectorEnv`` with ``SAME_STEP`` autoreset.

    Parameters
    ----------
    venv:
        The batched env (its ``metadata["autoreset_mode"]`` must be ``SAME_STEP``).
    offset, scale:
        Observation map ``(obs - offset) * scale`` (float32), or ``None`` to pass observations
        through.
    """

    def __init__(self, venv: gym.vector.VectorEnv[Any, Any, Any],
                 offset: NDArray[np.float64] | None = None,
                 scale: NDArray[np.float64] | None = None) -> None:
        from gymnasium.vector import AutoresetMode

        mode = venv.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"SB3VectorEnv needs a SAME_STEP autoreset vector env, "
                             f"{type(venv).__name__} has {mode!r}")
        self.venv = venv
        self.render_mode = None
        self._map = None if offset is None or scale is None else (offset, scale)
        space = venv.single_observation_space
        if offset is not None and scale is not None:
            assert isinstance(space, gym.spaces.Box)
            low = ((space.low - offset) * scale).astype(np.float32)
            high = ((space.high - offset) * scale).astype(np.float32)
            space = gym.spaces.Box(low, high, dtype=np.float32)
        super().__init__(venv.num_envs, space, venv.single_action_space)
        self._actions: Any = None

    def _obs(self, obs: Any) -> Any:
        if self._map is None:
            return obs
        offset, scale = self._map
        return ((obs - offset) * scale).astype(np.float32)

    def reset(self) -> Any:
        """Reset every env (seeded from :meth:`seed`'s first seed, when set)."""
        seed = self._seeds[0]
        obs, info = self.venv.reset(seed=seed)
        self._seeds = [None] * self.num_envs
        self.reset_infos = self._split(info)
        return self._obs(obs)

    def _split(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for key, value in info.items():
            if key.startswith("_") or key in ("final_obs", "final_info"):
                continue
            if isinstance(value, np.ndarray) and value.shape[:1] == (self.num_envs,):
                for i in range(self.num_envs):
                    rows[i][key] = value[i]
        return rows

    def step_async(self, actions: NDArray[Any]) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = actions

    def step_wait(self) -> Any:
        """One batched step; ended envs report their last observation as SB3 expects."""
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        infos = self._split(info)
        done = np.logical_or(terminated, truncated)
        if done.any():
            final = info["final_obs"]
            for i in np.flatnonzero(done):
                infos[i]["terminal_observation"] = self._obs(final[i])
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return self._obs(obs), np.asarray(reward, dtype=np.float32), done, infos

    def close(self) -> None:
        """Close the batched env."""
        self.venv.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The batched env's attribute, once per selected env."""
        value = getattr(self.venv, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute on the batched env (shared by every slot)."""
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None,
                   **method_kwargs: Any) -> list[Any]:
        """Call a method of the batched env once per selected env."""
        fn = getattr(self.venv, method_name)
        return [fn(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper[Any, Any, Any, Any]],
                       indices: Any = None) -> list[bool]:
        """No slot is wrapped (the batch is one env)."""
        return [False for _ in self._get_indices(indices)]

    def _get_indices(self, indices: Any) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices)
