"""Shared fixtures: one torch thread, offline HF, one cached SFT warm start per session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def sft_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A session-wide warm-start cache: the sumpair SFT checkpoint is trained once."""
    return str(tmp_path_factory.mktemp("sft"))
