"""Controller families of ctrlbench, registered in :data:`ctrlbench.registry.CONTROLLERS`."""

from ctrlbench.registry import CONTROLLERS


def register() -> None:
    """Register every controller family (string entry points only)."""
    CONTROLLERS.register(
        "pid",
        "controllers.motor_pi:make_pid",
        "PI designed from the plant model (technical/symmetrical optimum, EMF feed-forward)",
    )
    CONTROLLERS.register(
        "lqr",
        "controllers.lqr:make_lqr",
        "Discrete LQR with integral action on the linearized plant model",
    )
    CONTROLLERS.register(
        "zero", "controllers.trivial:make_zero", "Constant zero action (open-loop check)"
    )
