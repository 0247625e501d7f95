"""Plant families of ctrlbench, registered in gymnasium's registry under ``ctrlbench/``.

Each family is a sub-package (``model.py`` physics, ``env.py`` the Plant, options, references)
whose ``register()`` holds one line per plant; :func:`register` calls the ``register()`` of each
family named in :data:`FAMILIES` (``plants/README.md``).
"""

import importlib

#: The plant families of this package; a new family adds its sub-package name here.
FAMILIES = ("motor", "linear", "crystallization", "nmes", "laser", "rbc")


def register() -> None:
    """Register every plant family (string entry points only; nothing heavy is imported)."""
    for family in FAMILIES:
        importlib.import_module(f"plants.{family}").register()
