"""Linear benchmark plants: small, fast, with exact models (for tests and first experiments)."""

from ctrlbench.registry import register_plant


def register() -> None:
    """Register the linear plants in gymnasium's registry."""
    register_plant(
        "MassSpringDamper-v0",
        "plants.linear.env:MassSpringDamper",
        "mass-spring-damper position control, force input, random step reference",
        max_episode_steps=1000,
    )
