"""Plant families of ctrlbench, registered in gymnasium's registry under ``ctrlbench/``.

Each family is a sub-package (``model.py`` physics, ``env.py`` the Plant, options, references)
whose ``register()`` holds one line per plant; this hook calls each family's
(``plants/README.md``).
"""



def register() -> None:
    """Register every plant family (string entry points only; nothing heavy is imported)."""
    from plants import linear, motor

    motor.register()
    linear.register()
