"""Atomic checkpoints: unique fsynced temporary file, previous checkpoint kept on failure."""

import pytest
import torch

from llm_rl.checkpoint import load_checkpoint, save_checkpoint


def test_temp_name_is_unique_and_cleaned_up(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    other = tmp_path / "checkpoint.pt.tmp"  # e.g. another writer's temporary file
    other.write_bytes(b"not ours")
    save_checkpoint(path, {"step": 1})
    assert other.read_bytes() == b"not ours"
    assert load_checkpoint(path)["step"] == 1
    fsynced = []
    monkeypatch.setattr("llm_rl.checkpoint.os.fsync", lambda fd: fsynced.append(fd))
    save_checkpoint(path, {"step": 2})
    assert fsynced and load_checkpoint(path)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "checkpoint.pt.tmp"]


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"step": 1})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
