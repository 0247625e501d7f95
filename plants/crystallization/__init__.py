"""Dextrose batch cooling crystallization (Sitapure & Kwon 2023; MODELS.md section 3).

- :mod:`plants.crystallization.model`: parameters, kinetics, the finite-volume population
  balance and :func:`~plants.crystallization.model.simulate_open_loop` (numpy/scipy).
- :mod:`plants.crystallization.moments`: the method-of-moments ``PlantModel`` (numpy/casadi).
- :mod:`plants.crystallization.options`: the plant's options (light).
- :mod:`plants.crystallization.references`: grades, operating conditions, random jacket runs.
- :mod:`plants.crystallization.env`: the plant ``Crystallization``.
"""


def register() -> None:
    """Register the crystallization plant (one line; strings only)."""
    from ctrlbench.capabilities import Provides
    from ctrlbench.registry import register_plant

    register_plant(
        "Crystallization-v0", "plants.crystallization.env:Crystallization",
        "dextrose batch cooling crystallizer (population balance), mean size via jacket temp",
        options="plants.crystallization.options:CrystallizationOptions", max_episode_steps=144,
        provides=Provides(model=True, model_name="dextrose_crystallization",
                          operating_point=False, references=True, n_inputs=1))
