"""Electric motors on gym-electric-motor (GEM 3.0.3): DC speed control and PMSM dq current control.

- :mod:`plants.motor.model`: parameter dataclasses (SI units, sources) and :class:`PlantModel`
  builders for the DC motor ODE and the PMSM dq equations. Imports only numpy.
- :mod:`plants.motor.env`: the :class:`~ctrlbench.plant.Plant` classes ``DCSpeed`` and
  ``PMSMCurrent`` (import gym-electric-motor).
- :mod:`plants.motor.references`: a deterministic step reference for GEM (step responses).
"""
