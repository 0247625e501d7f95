"""Shared fixtures: one torch thread, offline HF, one cached SFT warm start per session."""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``), keep every test of the default warm start on
    one worker, so the SFT run is paid once."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if "sft_dir" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("sft"))


@pytest.fixture(scope="session")
def sft_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A session-wide warm-start cache: the sumpair SFT checkpoint is trained once."""
    return str(tmp_path_factory.mktemp("sft"))


#: The README's PID command (``ctrlbench llm train --task sumpair --control.name pid
#: --control.setpoint 0.6``), cut to :data:`README_PID_STEPS` steps for the default test run.
README_PID = ["train", "--task", "sumpair", "--control.name", "pid", "--control.setpoint", "0.6"]
README_PID_STEPS = 60


@pytest.fixture(scope="session")
def readme_pid_run(sft_dir: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """The README PID command run once per session: ``(out_dir, metrics rows)``."""
    from llm_rl.cli import main

    out = tmp_path_factory.mktemp("readme-pid") / "pid"
    assert main([*README_PID, "--steps", str(README_PID_STEPS), "--out_dir", str(out),
                 "--sft_dir", sft_dir, "--tensorboard", "false"]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x]
    return out, rows


#: Flags of a tiny ``llm train`` run (1 layer x 16 dims, 5 SFT steps, 2 x 2 samples per step):
#: fast enough for fault-injection tests that train for real.
TINY_FLAGS = ["--policy.n_layer", "1", "--policy.n_embd", "16", "--policy.n_head", "2",
              "--sft.steps", "5", "--steps", "4", "--prompts_per_step", "2", "--group_size", "2",
              "--eval_size", "4", "--pass_k", "2", "--eval_every", "2", "--checkpoint_every", "2",
              "--tensorboard", "false"]


@pytest.fixture(scope="session")
def tiny_sft_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A session-wide warm-start cache holding the tiny policy's SFT checkpoint."""
    from llm_rl.config import SFTConfig
    from llm_rl.policy import PolicySpec
    from llm_rl.sft import warm_start

    path = tmp_path_factory.mktemp("tiny-sft")
    warm_start("sumpair", PolicySpec(n_layer=1, n_embd=16, n_head=2), SFTConfig(steps=5),
               str(path))
    return str(path)


@pytest.fixture
def tiny(tiny_sft_dir: str):
    """``tiny(out_dir, *flags)``: the argv of a tiny ``llm train`` run writing to ``out_dir``."""

    def argv(out_dir: object, *flags: str) -> list[str]:
        return ["train", *TINY_FLAGS, "--sft_dir", tiny_sft_dir, "--out_dir", str(out_dir),
                *flags]

    return argv


@pytest.fixture
def tiny_flags() -> list[str]:
    """The flags of :data:`TINY_FLAGS` (a fresh list)."""
    return list(TINY_FLAGS)
