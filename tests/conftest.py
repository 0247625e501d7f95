"""Shared test set-up: one torch thread, no hub access, headless matplotlib."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

try:  # torch is optional for the core tests
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass

# Property-based fuzzing: a fast profile by default, a deeper one with
# ``CTRLBENCH_FUZZ=slow`` (or ``pytest --hypothesis-profile=slow``).
from hypothesis import HealthCheck, settings

settings.register_profile(
    "default", max_examples=25, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "slow", max_examples=400, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile(os.environ.get("CTRLBENCH_FUZZ", "default"))


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def lstmc_model_path(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A tiny LSTMc trained through its CLI (``python -m controllers.lstmc train``), ~1.5 s."""
    from controllers.lstmc import main

    out = tmp_path_factory.mktemp("lstmc")
    argv = ["train", "--out", str(out), "--quiet", "--window", "3", "--hidden", "4",
            "--epochs", "1", "--samples_per_run", "0", "--runs", "4", "--chunk", "2",
            "--steps", "6", "--n_cells", "50"]
    assert main(argv) == 0
    return out / "model.pt"


@pytest.fixture(scope="session")
def sb3_model_for(tmp_path_factory):  # type: ignore[no-untyped-def]
    """``sb3_model_for(plant_id) -> run folder``: an untrained SAC saved by ``ctrlbench train``
    for that plant (one step, no learning; cached per plant), for tests of ``sb3:PATH``."""
    pytest.importorskip("stable_baselines3")
    from ctrlbench.registry import smoke_options
    from ctrlbench.training import train

    cache: dict[str, str] = {}

    def folder(plant_id: str) -> str:
        if plant_id not in cache:
            out = tmp_path_factory.mktemp("sb3")
            train("sac", plant_id, out,
                  settings={"steps": 1, "eval_steps": 2, "tensorboard": False},
                  algorithm_options={"net_arch": (8,), "buffer_size": 10},
                  plant_options=smoke_options(plant_id))
            cache[plant_id] = str(out)
        return cache[plant_id]

    return folder


#: Test modules whose module-scoped fixtures are expensive (the README's study and training
#: runs, a trained SAC): under pytest-xdist each runs on one worker, so the fixture is built once.
_ONE_WORKER = ("tests/test_readme.py", "tests/controllers/test_sb3.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``, keep each module of :data:`_ONE_WORKER` on one worker."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if path in _ONE_WORKER:
            item.add_marker(pytest.mark.xdist_group(path.replace("/", "_")))
