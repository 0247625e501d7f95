"""Fixtures for the core tests: the mass-spring-damper plant and a PD controller."""

from __future__ import annotations

import numpy as np
import pytest

import ctrlbench
from ctrlbench.controller import FeedbackController
from ctrlbench.trajectory import Trajectory

MSD = "ctrlbench/MassSpringDamper-v0"


class PD(FeedbackController):
    """PD on the position error of the mass-spring-damper (observation ``[x, v, x_ref]``)."""

    def __init__(self, dt: float, kp: float = 40.0, kd: float = 9.0) -> None:
        super().__init__(dt)
        self.kp, self.kd = kp, kd
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def compute(self, observation: np.ndarray) -> np.ndarray:
        x, v, ref = observation
        # static feed-forward k*ref cancels the spring at the set-point
        return np.clip([self.kp * (ref - x) - self.kd * v + 2.0 * ref], -10.0, 10.0)


@pytest.fixture
def plant():
    env = ctrlbench.make_plant(MSD)
    yield env
    env.close()


@pytest.fixture
def pd(plant) -> PD:
    return PD(plant.unwrapped.dt)


@pytest.fixture
def traj(plant, pd) -> Trajectory:
    return ctrlbench.simulate(plant, pd, steps=500, seed=3)
