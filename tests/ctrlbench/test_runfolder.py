"""Run folders: locks, claims, quarantine and file permissions (ctrlbench.runfolder / io)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from ctrlbench.io import atomic_write_bytes
from ctrlbench.runfolder import (
    FolderBusyError,
    RunFolderError,
    claim_folder,
    ensure_writable,
    lock_folder,
    quarantine,
)


def test_written_files_get_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "a" / "f.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    code = f"from ctrlbench.runfolder import lock_folder\nwith lock_folder({str(tmp_path)!r}): pass"
    with lock_folder(tmp_path):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=False)
        assert out.returncode == 1
        assert f"in use by another run (pid {os.getpid()})" in out.stderr
    with lock_folder(tmp_path):  # released on exit
        pass


def test_lock_of_a_killed_holder_does_not_block(tmp_path):
    code = (f"import os\nfrom ctrlbench.runfolder import lock_folder\n"
            f"with lock_folder({str(tmp_path)!r}): os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code], check=False)
    with lock_folder(tmp_path):
        pass


def test_claim_refuses_a_used_folder_and_overwrite_moves_it_aside(tmp_path):
    run = tmp_path / "run"
    assert claim_folder(run, resume=False, overwrite=False) is None  # missing: fine
    run.mkdir()
    (run / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(RunFolderError, match=r"already holds a run \(metrics.jsonl\).*--resume"):
        claim_folder(run, resume=False, overwrite=False)
    assert claim_folder(run, resume=True, overwrite=False) is None
    with pytest.raises(RunFolderError, match="not both"):
        claim_folder(run, resume=True, overwrite=True)
    aside = claim_folder(run, resume=False, overwrite=True)
    assert aside is not None and (aside / "metrics.jsonl").read_text() == "{}\n"
    assert list(run.iterdir()) == []


def test_markers_limit_what_counts_as_a_run(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert claim_folder(tmp_path, resume=False, overwrite=False, markers=["ckpt.pt"]) is None


def test_quarantine_moves_and_explains(tmp_path):
    bad = tmp_path / "records" / "r.json"
    bad.parent.mkdir()
    bad.write_text("[")
    dest = quarantine(bad, tmp_path, "not JSON")
    assert not bad.exists() and dest.read_text() == "["
    assert "not JSON" in dest.with_name(dest.name + ".why.txt").read_text()
    bad.write_text("]")
    assert quarantine(bad, tmp_path, "again").name == "r.json.1"


def test_unwritable_targets_are_named(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(RunFolderError, match="is a file"):
        ensure_writable(f)
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(RunFolderError, match="not writable"):
            ensure_writable(ro)


def test_busy_error_is_a_run_folder_error():
    assert issubclass(FolderBusyError, RunFolderError) and issubclass(RunFolderError, ValueError)
