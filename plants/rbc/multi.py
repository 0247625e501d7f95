"""The invariant multi-agent views of the Rayleigh–Bénard plant (Vignon et al. 2023).

Each of the 10 bottom segments is an agent of one shared policy. Agent ``i`` sees the probe
field rolled in x so its own segment sits in the middle (:func:`plants.rbc.model.recentre`),
outputs one action in [-1, 1] and earns ``2.6726 - (0.9985 Nu_probe + 0.0015 Nu_local_i)``.

- :class:`RBCMultiAgentVecEnv`: a Stable-Baselines3 ``VecEnv`` whose slots are the agents of
  ``n_sims`` simulations (``num_envs = 10 n_sims``), all stepped in one batched solver call; a
  policy trained on it is the shared policy.
- :class:`RBCParallelEnv`: a PettingZoo ``ParallelEnv`` over one simulation, agents
  ``segment_0`` .. ``segment_9``.

Needs the ``rl`` (stable-baselines3) and ``rbc`` (pettingzoo) extras.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray
from pettingzoo import ParallelEnv
from stable_baselines3.common.vec_env import VecEnv

from plants.rbc.backend import Measurement, Simulation
from plants.rbc.env import GLOBAL_WEIGHT, REWARD_OFFSET, VELOCITY_BOUND, local_nusselt, step_info
from plants.rbc.model import N_SEGMENTS, PROBE_COLS, PROBE_ROWS, recentre, segment_temperatures
from plants.rbc.options import RBCOptions

__all__ = ["AGENTS", "RBCMultiAgentVecEnv", "RBCParallelEnv", "agent_observations",
           "agent_rewards"]

AGENTS = tuple(f"segment_{i}" for i in range(N_SEGMENTS))
EPISODE_ACTIONS = 200


def _obs_space() -> spaces.Box:
    n = PROBE_ROWS * PROBE_COLS
    low = np.concatenate([np.full(2 * n, -VELOCITY_BOUND), np.zeros(n)])
    high = np.concatenate([np.full(2 * n, VELOCITY_BOUND), np.full(n, 4.0)])
    return spaces.Box(low=low, high=high, dtype=np.float64)


def _act_space() -> spaces.Box:
    return spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=np.float64)


def agent_observations(probes: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per agent the recentred probe field, flattened: ``(batch, 10, 768)`` from
    ``(batch, 3, 8, 32)``."""
    space = _obs_space()
    out = np.stack([recentre(probes, i).reshape(len(probes), -1) for i in range(N_SEGMENTS)],
                   axis=1)
    clipped: NDArray[np.float64] = np.clip(out, space.low, space.high)
    return clipped


def agent_rewards(m: Measurement, kappa: float) -> NDArray[np.float64]:
    """``2.6726 - (0.9985 Nu_probe + 0.0015 Nu_local_i)``, ``(batch, 10)``."""
    local = local_nusselt(m["probes"], kappa)
    out: NDArray[np.float64] = REWARD_OFFSET - (GLOBAL_WEIGHT * m["nu_probe"][:, None]
                                                + (1.0 - GLOBAL_WEIGHT) * local)
    return out


def _check_actions(actions: Any, n: int) -> NDArray[np.float64]:
    from ctrlbench.plant import ActionError

    a = np.asarray(actions, dtype=np.float64).reshape(-1)
    if a.size != n:
        raise ActionError(f"expected {n} agent actions, got {a.size}")
    bad = ~np.isfinite(a) | (np.abs(a) > 1.0)
    if bad.any():
        raise ActionError(f"agent actions must be finite in [-1, 1]; got {a[bad].tolist()} "
                          f"at slots {np.nonzero(bad)[0].tolist()}")
    return a


class RBCMultiAgentVecEnv(VecEnv):
    """SB3 ``VecEnv``: slot ``10 s + i`` is agent ``i`` of simulation ``s``.

    Episodes last 200 actions (or end when a flow blows up); a finished simulation is reset at
    once and its slots carry ``terminal_observation`` in their info, as SB3 expects.
    """

    def __init__(self, n_sims: int = 1, episode_actions: int = EPISODE_ACTIONS,
                 seed: int = 0, **options: Any) -> None:
        if not (isinstance(n_sims, int) and n_sims >= 1):
            raise ValueError(f"n_sims = {n_sims!r}: must be an integer >= 1")
        if not (isinstance(episode_actions, int) and episode_actions >= 1):
            raise ValueError(f"episode_actions = {episode_actions!r}: must be an integer >= 1")
        opts = RBCOptions.build(options, what="plant 'RBC-v0' (multi-agent)")
        self.sim = Simulation(opts, batch=n_sims)
        self.n_sims = n_sims
        self.episode_actions = episode_actions
        self.kappa = self.sim.params.kappa
        self.render_mode = None
        super().__init__(n_sims * N_SEGMENTS, _obs_space(), _act_space())
        self._rng = np.random.default_rng(seed)
        self._count = np.zeros(n_sims, dtype=np.int64)
        self._actions: NDArray[np.float64] | None = None

    def reset(self) -> NDArray[np.float64]:
        """Every simulation at its start; observations ``(10 n_sims, 768)``."""
        self.sim.reset(seed=int(self._rng.integers(2**31 - 1)))
        self._count[:] = 0
        obs = agent_observations(self.sim.measure()["probes"])
        return obs.reshape(self.num_envs, -1)

    def step_async(self, actions: NDArray[np.float64]) -> None:
        """Store the agents' actions ``(10 n_sims, 1)``."""
        self._actions = _check_actions(actions, self.num_envs)

    def step_wait(self) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_],
                                 list[dict[str, Any]]]:
        """One action period for every simulation, in one batched call."""
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async()")
        self.sim.apply(segment_temperatures(self._actions.reshape(self.n_sims, N_SEGMENTS)))
        self._actions = None
        self.sim.advance()
        self._count += 1
        m = self.sim.measure()
        obs = agent_observations(m["probes"])
        rewards = agent_rewards(m, self.kappa)
        ended = m["blown_up"] | (self._count >= self.episode_actions)
        infos: list[dict[str, Any]] = []
        for s in range(self.n_sims):
            info = step_info(m, self.kappa, s)
            for i in range(N_SEGMENTS):
                infos.append({**info, "agent": i,
                              "TimeLimit.truncated": bool(ended[s] and not m["blown_up"][s])})
        if ended.any():
            done_idx = np.nonzero(ended)[0]
            for d in done_idx.tolist():
                for i in range(N_SEGMENTS):
                    infos[d * N_SEGMENTS + i]["terminal_observation"] = obs[d, i].copy()
            self.sim.reset(index=done_idx, seed=int(self._rng.integers(2**31 - 1)))
            self._count[done_idx] = 0
            fresh = agent_observations(self.sim.measure()["probes"])
            obs[done_idx] = fresh[done_idx]
        dones = np.repeat(ended, N_SEGMENTS)
        return obs.reshape(self.num_envs, -1), rewards.reshape(-1), dones, infos

    def close(self) -> None:
        """Stop the solver's worker, if any."""
        self.sim.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The attribute of this (shared) environment, once per selected slot."""
        return [getattr(self, attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        """Set an attribute of the shared environment."""
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None,
                   **method_kwargs: Any) -> list[Any]:
        """Call a method of the shared environment, once per selected slot."""
        return [getattr(self, method_name)(*method_args, **method_kwargs)
                for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: Any, indices: Any = None) -> list[bool]:
        """No slot is wrapped."""
        return [False] * len(self._indices(indices))

    def seed(self, seed: int | None = None) -> list[int | None]:
        """Seed the start noise of the next resets."""
        self._rng = np.random.default_rng(seed)
        return [seed] * self.num_envs

    def _indices(self, indices: Any) -> list[int]:
        if indices is None:
            return list(range(self.num_envs))
        if isinstance(indices, int):
            return [indices]
        return list(indices)


class RBCParallelEnv(ParallelEnv[str, NDArray[np.float64], NDArray[np.float64]]):
    """PettingZoo ``ParallelEnv`` over one simulation; agents ``segment_0`` .. ``segment_9``."""

    metadata = {"name": "rbc_v0", "render_modes": []}  # noqa: RUF012

    def __init__(self, episode_actions: int = EPISODE_ACTIONS, **options: Any) -> None:
        if not (isinstance(episode_actions, int) and episode_actions >= 1):
            raise ValueError(f"episode_actions = {episode_actions!r}: must be an integer >= 1")
        opts = RBCOptions.build(options, what="plant 'RBC-v0' (PettingZoo)")
        self.sim = Simulation(opts, batch=1)
        self.kappa = self.sim.params.kappa
        self.episode_actions = episode_actions
        self.possible_agents = list(AGENTS)
        self.agents: list[str] = []
        self._count = 0
        self._obs_space = _obs_space()
        self._act_space = _act_space()

    def observation_space(self, agent: str) -> spaces.Box:
        """Every agent sees a recentred 768-value probe field."""
        return self._obs_space

    def action_space(self, agent: str) -> spaces.Box:
        """Every agent heats its segment with one value in [-1, 1]."""
        return self._act_space

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, NDArray[np.float64]], dict[str, dict[str, Any]]]:
        """Start a new episode; observations and infos per agent."""
        self.agents = list(self.possible_agents)
        self._count = 0
        self.sim.reset(seed=seed)
        m = self.sim.measure()
        obs = agent_observations(m["probes"])[0]
        info = step_info(m, self.kappa)
        return ({a: obs[i] for i, a in enumerate(self.agents)},
                {a: dict(info) for a in self.agents})

    def step(self, actions: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float],
                                                     dict[str, bool], dict[str, bool],
                                                     dict[str, dict[str, Any]]]:
        """All agents act at once for one action period."""
        if not self.agents:
            raise RuntimeError("step() after the episode ended; call reset()")
        unknown = sorted(set(actions) - set(self.agents))
        missing = sorted(set(self.agents) - set(actions))
        if unknown or missing:
            raise KeyError(f"actions needed for exactly the agents {self.agents}; unknown "
                           f"{unknown}, missing {missing}")
        from ctrlbench.plant import ActionError

        values = []
        for ag in self.agents:
            arr = np.asarray(actions[ag], dtype=np.float64)
            if arr.size != 1:
                raise ActionError(f"agent {ag!r}: action must have shape (1,), got shape "
                                  f"{arr.shape}")
            values.append(float(arr.reshape(-1)[0]))
        a = _check_actions(values, N_SEGMENTS)
        self.sim.apply(segment_temperatures(a)[None])
        self.sim.advance()
        self._count += 1
        m = self.sim.measure()
        obs = agent_observations(m["probes"])[0]
        rew = agent_rewards(m, self.kappa)[0]
        info = step_info(m, self.kappa)
        blown = bool(m["blown_up"][0])
        trunc = self._count >= self.episode_actions and not blown
        agents = self.agents
        out = ({a: obs[i] for i, a in enumerate(agents)},
               {a: float(rew[i]) for i, a in enumerate(agents)},
               dict.fromkeys(agents, blown), dict.fromkeys(agents, trunc),
               {a: dict(info) for a in agents})
        if blown or trunc:
            self.agents = []
        return out

    def close(self) -> None:
        """Stop the solver's worker, if any."""
        self.sim.close()
