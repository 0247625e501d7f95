"""ctrlbench: physical plants and classical/learned controllers behind one interface.

The core holds no plant or controller code and imports no heavy library (torch, casadi,
gym-electric-motor, transformers) at import time.

>>> import ctrlbench
>>> plant = ctrlbench.make_plant("ctrlbench/DCSpeed-v0")            # doctest: +SKIP
>>> ctrl = ctrlbench.make_controller("pid", plant)                  # doctest: +SKIP
>>> traj = ctrlbench.simulate(plant, ctrl, steps=2000, seed=0)      # doctest: +SKIP
>>> ctrlbench.metrics.summary(traj)["iae"]                          # doctest: +SKIP
"""

from ctrlbench import metrics
from ctrlbench.controller import Controller, FeedbackController
from ctrlbench.model import PlantModel
from ctrlbench.plant import Plant, signals_of
from ctrlbench.registry import (
    CONTROLLERS,
    make_controller,
    make_plant,
    plant_ids,
    register_plant,
)
from ctrlbench.signals import SignalSpec
from ctrlbench.simulate import simulate
from ctrlbench.trajectory import Trajectory

__version__ = "0.1.0"

__all__ = [
    "CONTROLLERS",
    "Controller",
    "FeedbackController",
    "Plant",
    "PlantModel",
    "SignalSpec",
    "Trajectory",
    "__version__",
    "make_controller",
    "make_plant",
    "metrics",
    "plant_ids",
    "register_plant",
    "signals_of",
    "simulate",
]
