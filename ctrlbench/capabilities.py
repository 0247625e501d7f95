"""What a plant provides and what a controller needs (SB3's ``supported_action_spaces``, widened).

A plant registration declares :class:`Provides` (data only, so ``ctrlbench list`` can print the
plant x controller matrix without importing a plant); a controller registration declares
:class:`Requires`. :func:`missing` compares the two and names every unmet need, so
:func:`ctrlbench.make_controller` refuses an inapplicable pair up front and conformance tests run
only the applicable pairs. :func:`provides_of` reads the same facts off a built plant, and the
conformance tests check that each registration tells the truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["NotApplicableError", "Provides", "Requires", "missing", "provides_of"]


class NotApplicableError(ValueError):
    """A controller was asked for a plant that lacks something it needs."""


@dataclass(frozen=True)
class Provides:
    """Facts about a plant that decide which controllers apply.

    Parameters
    ----------
    model:
        ``model()`` returns a :class:`~ctrlbench.model.PlantModel`.
    model_name:
        ``model().name`` (keys model-based designs such as the PID designs); ``None`` without one.
    operating_point:
        The model declares an operating point (``x_op``/``u_op``) to linearize and track around.
    references:
        Some observation signal is a reference that ``tracks`` another signal.
    box_action:
        The action space is a ``Box``.
    n_inputs:
        Number of action entries.
    objective:
        ``objective()`` returns a :class:`~ctrlbench.objective.SettingObjective` (a batched
        black-box cost of a setting the actions move), so setting optimizers (BO, DE) apply.
    """

    model: bool = False
    model_name: str | None = None
    operating_point: bool = False
    references: bool = False
    box_action: bool = True
    n_inputs: int = 1
    objective: bool = False


@dataclass(frozen=True)
class Requires:
    """What a controller needs from a plant.

    Parameters
    ----------
    model:
        A ``model()``.
    operating_point:
        A model with an operating point (LQR, MPC linearize or track around it).
    references:
        A tracked reference in the observation.
    box_action:
        A ``Box`` action space.
    n_inputs:
        Exactly this many action entries (``None``: any number).
    model_names:
        Only plants whose model has one of these names (``None``: any); for model-based designs.
    objective:
        A setting objective (``objective()``), for black-box setting optimizers.
    """

    model: bool = False
    operating_point: bool = False
    references: bool = False
    box_action: bool = True
    n_inputs: int | None = None
    model_names: tuple[str, ...] | None = None
    objective: bool = False


def missing(requires: Requires, provides: Provides) -> list[str]:
    """The needs in ``requires`` that ``provides`` does not meet, in words (empty: applicable)."""
    out = []
    if requires.model and not provides.model:
        out.append("a model()")
    if requires.operating_point and not provides.operating_point:
        out.append("a model operating point (x_op, u_op)")
    if requires.references and not provides.references:
        out.append("a tracked reference in the observation")
    if requires.box_action and not provides.box_action:
        out.append("a Box action space")
    if requires.n_inputs is not None and provides.n_inputs != requires.n_inputs:
        out.append(f"exactly {requires.n_inputs} input(s) (it has {provides.n_inputs})")
    if requires.model_names is not None and provides.model_name not in requires.model_names:
        have = provides.model_name or "no model"
        out.append(f"a model named one of {list(requires.model_names)} (it has {have})")
    if requires.objective and not provides.objective:
        out.append("a setting objective (objective())")
    return out


def provides_of(env: Any) -> Provides:
    """The :class:`Provides` facts of a built plant (looks through wrappers)."""
    import gymnasium as gym

    from ctrlbench.plant import signals_of

    base = env.unwrapped
    model = None
    if callable(getattr(base, "model", None)):
        try:
            model = base.model()
        except NotImplementedError:
            model = None
    obs, _ = signals_of(env)
    space = env.action_space
    return Provides(
        model=model is not None,
        model_name=None if model is None else model.name,
        operating_point=model is not None and model.x_op is not None,
        references=any(s.tracks is not None for s in obs),
        box_action=isinstance(space, gym.spaces.Box),
        n_inputs=int(np.prod(space.shape)) if space.shape else 1,
        objective=callable(getattr(base, "objective", None)),
    )
