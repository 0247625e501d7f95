"""Rayleigh–Bénard convection, invariant multi-agent control (Vignon et al. 2023; MODELS.md 1).

- :mod:`plants.rbc.model`: parameters, the bottom-wall actuation, probes, probe Nusselt number,
  roll count (numpy only).
- :mod:`plants.rbc.solver`: the batched Fourier–Chebyshev solver in torch (CPU or GPU).
- :mod:`plants.rbc.fem_backend`: the DOLFINx (0.5, system Python) worker, same equations.
- :mod:`plants.rbc.backend`: one interface over both (``backend`` option).
- :mod:`plants.rbc.start`: the developed uncontrolled start, cached on disk.
- :mod:`plants.rbc.env`: ``RBC-v0``, the single-agent view (10-dim action).
- :mod:`plants.rbc.multi`: the multi-agent views (SB3 ``VecEnv``, PettingZoo ``ParallelEnv``).
"""

#: Options that make the plant cheap for conformance tests and smoke runs: a coarse grid, a
#: short action, a conductive start (no developed state to compute).
SMOKE = {"nx": 16, "ny": 12, "action_period": 0.1, "start": "conduction", "noise": 1e-2}


def register() -> None:
    """Register the Rayleigh–Bénard plant (one line; strings only)."""
    from ctrlbench.capabilities import Provides
    from ctrlbench.registry import register_plant

    register_plant(
        "RBC-v0", "plants.rbc.env:RBC",
        "2-D Rayleigh-Benard convection, Ra 1e4: 10 heated bottom segments (Vignon et al.)",
        options="plants.rbc.options:RBCOptions", max_episode_steps=200,
        provides=Provides(references=False, n_inputs=10), smoke_options=SMOKE)
