"""ctrlbench: physical plants and classical/learned controllers behind one interface.

The core holds no plant or controller code and imports no heavy library (torch, casadi,
gym-electric-motor, transformers) at import time. Importing it runs the registration hooks of
the installed plant and controller families (string entry points only), so
``gymnasium.make("ctrlbench/DCSpeed-v0")`` works right after ``import ctrlbench``.

>>> import ctrlbench
>>> plant = ctrlbench.make_plant("ctrlbench/DCSpeed-v0")            # doctest: +SKIP
>>> ctrl = ctrlbench.make_controller("pid", plant)                  # doctest: +SKIP
>>> traj = ctrlbench.simulate(plant, ctrl, steps=2000, seed=0)      # doctest: +SKIP
>>> ctrlbench.metrics.summary(traj)["iae"]                          # doctest: +SKIP
"""

from ctrlbench import metrics
from ctrlbench.capabilities import NotApplicableError, Provides, Requires
from ctrlbench.controller import Controller, FeedbackController
from ctrlbench.model import PlantModel
from ctrlbench.options import OptionError, Options, option
from ctrlbench.plant import Plant, plant_dt, signals_of
from ctrlbench.registry import (
    CONTROLLERS,
    PLANTS,
    Registry,
    load_plugins,
    make_controller,
    make_plant,
    plant_ids,
    register_plant,
    unregister_plant,
)
from ctrlbench.signals import SignalSpec
from ctrlbench.simulate import simulate
from ctrlbench.trajectory import Trajectory

__version__ = "0.1.0"

__all__ = [
    "CONTROLLERS",
    "PLANTS",
    "Controller",
    "FeedbackController",
    "NotApplicableError",
    "OptionError",
    "Options",
    "Plant",
    "PlantModel",
    "Provides",
    "Registry",
    "Requires",
    "SignalSpec",
    "Trajectory",
    "__version__",
    "make_controller",
    "make_plant",
    "metrics",
    "option",
    "plant_dt",
    "plant_ids",
    "register_plant",
    "signals_of",
    "simulate",
    "unregister_plant",
]

# Every installed family registers its ids now (strings only), so gymnasium.make works at once.
load_plugins()
