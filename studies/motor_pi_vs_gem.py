"""Designed dq-current PI vs gym-electric-motor's own cascaded PI on ``Cont-CC-PMSM-v0``.

Claim (issue 2): on GEM's default reference profile (Wiener-process i_sd/i_sq references) the
ctrlbench ``"pid"`` design (technical optimum, T_sigma = dt, dq decoupling + EMF feed-forward)
reaches an IAE equal to or better than ``gem_controllers.GemController.make(env,
env_id="Cont-CC-PMSM-v0")`` (symmetrical optimum with a = 4, decoupling, EMF feed-forward), same
seed, same episode length.

Both controllers run through ``ctrlbench.simulate`` on ``ctrlbench/PMSMCurrent-v0`` (which seeds
GEM with the episode seed, so the reference profile is raw GEM's for that seed). GEM's controller
outputs phase duty cycles; :class:`GemCascadedPI` clips them to [-1, 1] as GEM's converter does and
maps them to the plant's dq command with GEM's own transformation, which the plant maps back
exactly (the zero-sequence differs, which does not reach the motor). As a check the GEM controller
is also run in GEM's own loop on raw ``gem.make("Cont-CC-PMSM-v0")``; both IAEs are printed.
IAE = sum over samples 1..T and both axes of |reference - current| * dt (A*s), with the observed
reference (GEM's set-point for the next state), as in ``ctrlbench.metrics.iae``.

``gem_controllers`` imports ``control_block_diagram`` (an undeclared dependency used only to draw
block diagrams); when it is missing, an import stub stands in for it and block diagrams are off.

Run: ``python studies/motor_pi_vs_gem.py`` (3 seeds x 10 000 steps = 1 s of motor time each;
about 40 s on one core of a 2-core VM), ``--smoke`` (1 seed x 500 steps, a few seconds).
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import math
import sys
import types
import warnings
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ctrlbench import metrics
from ctrlbench.controller import FeedbackController
from ctrlbench.plant import signals_of
from ctrlbench.provenance import format_provenance, provenance
from ctrlbench.registry import make_controller, make_plant
from ctrlbench.signals import index_of
from ctrlbench.simulate import simulate


@dataclass(frozen=True)
class Args:
    """Study settings."""

    seeds: tuple[int, ...] = (0, 1, 2)
    """episode seeds (same seed for both controllers)"""
    steps: int = 10_000
    """control steps per episode (tau = 1e-4 s)"""
    smoke: bool = False
    """seconds-long version: one seed, 500 steps"""


# -- gem_controllers import ------------------------------------------------------------------------
class _Anything:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return _Anything()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _Anything()


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything


class _BlockDiagramStub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Stands in for the drawing-only ``control_block_diagram`` package."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name.split(".")[0] == "control_block_diagram":
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def import_gem_controllers() -> Any:
    """Import ``gem_controllers``, stubbing ``control_block_diagram`` when it is absent."""
    try:
        import control_block_diagram  # noqa: F401
    except ImportError:
        sys.meta_path.insert(0, _BlockDiagramStub())
    import gem_controllers

    return gem_controllers


# -- GEM's controller as a ctrlbench controller ----------------------------------------------------
class GemCascadedPI(FeedbackController):
    """``gem_controllers`` current controller on ``ctrlbench/PMSMCurrent-v0``.

    Parameters
    ----------
    plant:
        The ctrlbench PMSM plant (for signal names and bounds).
    gem_controller:
        A tuned ``gem_controllers`` controller (``control(state, reference) -> abc duty``).
    """

    def __init__(self, plant: Any, gem_controller: Any) -> None:
        super().__init__(float(plant.get_wrapper_attr("dt")))
        obs, _ = signals_of(plant)
        states = [s for s in obs if s.tracks is None]
        refs = [s for s in obs if s.tracks is not None]
        self._n = len(states)
        self._limits = np.array([s.high for s in states])  # GEM's limits (its state space is +-1)
        self._ref_limits = np.array([obs[index_of(obs, r.tracks)].high for r in refs if r.tracks])
        self._eps = index_of(obs, "epsilon")
        u_sup = obs[index_of(obs, "u_sup")].high
        self._k = u_sup / 2.0 / (2.0 / 3.0 * u_sup)  # duty -> volts -> plant command
        self.gem = gem_controller

    def reset(self) -> None:
        """Reset GEM's controller state."""
        self.gem.reset()

    def compute(self, observation: NDArray[np.float64]) -> NDArray[np.float64]:
        """GEM's abc duty cycles, expressed as the plant's dq command."""
        state = observation[: self._n] / self._limits
        ref = observation[self._n :] / self._ref_limits
        a, b, c = np.clip(np.asarray(self.gem.control(state, ref), dtype=float), -1.0, 1.0)
        alpha = (2.0 * a - b - c) / 3.0
        beta = (b - c) / math.sqrt(3.0)
        eps = float(observation[self._eps])
        cs, sn = math.cos(eps), math.sin(eps)
        return np.array([cs * alpha + sn * beta, -sn * alpha + cs * beta]) * self._k


def gem_native_iae(gc: Any, seed: int, steps: int) -> tuple[float, int]:
    """GEM's controller in GEM's own loop on raw ``Cont-CC-PMSM-v0``: (IAE, steps run)."""
    import gym_electric_motor as gem

    env = gem.make("Cont-CC-PMSM-v0")
    ctrl = gc.GemController.make(env, env_id="Cont-CC-PMSM-v0", block_diagram=False)
    ps = env.unwrapped.physical_system
    names = list(ps.state_names)
    idx = [names.index("i_sd"), names.index("i_sq")]
    lim = np.asarray(ps.limits)[idx]
    (state, ref), _ = env.reset(seed=seed)
    ctrl.reset()
    total, k = 0.0, 0
    for k in range(1, steps + 1):  # noqa: B007
        (state, ref), _, terminated, _, _ = env.step(ctrl.control(state, ref))
        total += float(np.sum(np.abs((ref - state[idx]) * lim)))
        if terminated:
            break
    return total * ps.tau, k


def run(args: Args) -> list[dict[str, Any]]:
    """Run both controllers on every seed; returns one row per seed."""
    import gym_electric_motor as gem

    warnings.filterwarnings("ignore", message=".*not within the observation space.*")
    gc = import_gem_controllers()
    seeds = args.seeds[:1] if args.smoke else args.seeds
    steps = 500 if args.smoke else args.steps
    rows = []
    for seed in seeds:
        plant = make_plant("ctrlbench/PMSMCurrent-v0")
        ours = simulate(plant, make_controller("pid", plant), steps=steps, seed=seed)
        tuned = gc.GemController.make(
            gem.make("Cont-CC-PMSM-v0"), env_id="Cont-CC-PMSM-v0", block_diagram=False
        )
        theirs = simulate(plant, GemCascadedPI(plant, tuned), steps=steps, seed=seed)
        native, native_steps = gem_native_iae(gc, seed, steps)
        rows.append(
            {
                "seed": seed,
                "steps": steps,
                "iae_ours": metrics.iae(ours, "i_sd_ref") + metrics.iae(ours, "i_sq_ref"),
                "iae_gem": metrics.iae(theirs, "i_sd_ref") + metrics.iae(theirs, "i_sq_ref"),
                "iae_gem_native": native,
                "terminated": (ours.terminated, theirs.terminated, native_steps < steps),
            }
        )
    return rows


def _parse(argv: list[str] | None = None) -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(Args.seeds))
    parser.add_argument("--steps", type=int, default=Args.steps)
    parser.add_argument("--smoke", action="store_true")
    ns = parser.parse_args(argv)
    values = {f.name: getattr(ns, f.name) for f in fields(Args)}
    values["seeds"] = tuple(values["seeds"])
    return Args(**values)


def main(argv: list[str] | None = None) -> int:
    """Run the study and print a markdown table and its provenance."""
    args = _parse(argv)
    rows = run(args)
    print("| seed | steps | IAE ours (A*s) | IAE GEM PI (A*s) | IAE GEM PI, GEM loop | ours/GEM |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['seed']} | {r['steps']} | {r['iae_ours']:.4f} | {r['iae_gem']:.4f} | "
            f"{r['iae_gem_native']:.4f} | {r['iae_ours'] / r['iae_gem']:.3f} |"
        )
    worse = [r["seed"] for r in rows if r["iae_ours"] > r["iae_gem"]]
    print("terminated (ours, GEM, GEM loop):", [r["terminated"] for r in rows])
    print("claim holds" if not worse else f"claim FAILS on seeds {worse}")
    print("\n" + format_provenance(provenance()), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
