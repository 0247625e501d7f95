"""Plant families of ctrlbench, registered in gymnasium's registry under ``ctrlbench/``."""

from ctrlbench.registry import register_plant


def register() -> None:
    """Register every plant family (string entry points only; nothing heavy is imported)."""
    register_plant(
        "DCSpeed-v0",
        "plants.motor.env:DCSpeed",
        "Permanently excited DC motor, speed control (GEM Cont-SC-PermExDc-v0), duty-cycle action",
        max_episode_steps=10_000,
    )
    register_plant(
        "PMSMCurrent-v0",
        "plants.motor.env:PMSMCurrent",
        "PMSM dq current control at constant speed (GEM Cont-CC-PMSM-v0), dq-voltage action",
        max_episode_steps=10_000,
    )
