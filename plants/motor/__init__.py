"""Electric motors on gym-electric-motor (GEM 3.0.3): DC speed control and PMSM dq current control.

- :mod:`plants.motor.model`: parameter dataclasses (SI units, sources) and :class:`PlantModel`
  builders for the DC motor ODE and the PMSM dq equations. Imports only numpy.
- :mod:`plants.motor.options`: the plants' options (light).
- :mod:`plants.motor.env`: the :class:`~ctrlbench.plant.Plant` classes ``DCSpeed`` and
  ``PMSMCurrent`` (import gym-electric-motor).
- :mod:`plants.motor.references`: a deterministic step reference for GEM (step responses).
"""



def register() -> None:
    """Register the motor plants (one line each; strings only, GEM is imported on make)."""
    from ctrlbench.capabilities import Provides
    from ctrlbench.registry import register_plant

    register_plant(
        "DCSpeed-v0", "plants.motor.env:DCSpeed",
        "Permanently excited DC motor, speed control (GEM Cont-SC-PermExDc-v0), duty-cycle action",
        options="plants.motor.options:DCSpeedOptions", max_episode_steps=10_000,
        provides=Provides(model=True, model_name="dc_motor", operating_point=True,
                          references=True, n_inputs=1))
    register_plant(
        "PMSMCurrent-v0", "plants.motor.env:PMSMCurrent",
        "PMSM dq current control at constant speed (GEM Cont-CC-PMSM-v0), dq-voltage action",
        options="plants.motor.options:PMSMCurrentOptions", max_episode_steps=10_000,
        provides=Provides(model=True, model_name="pmsm_dq", operating_point=True,
                          references=True, n_inputs=2))
