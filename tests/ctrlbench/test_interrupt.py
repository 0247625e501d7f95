"""SIGINT / SIGTERM handling (ctrlbench.interrupt)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ctrlbench.interrupt import (
    Interrupted,
    deferred_signals,
    exit_status,
    handle_signals,
    pending_signal,
    raise_if_interrupted,
)


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_raise_interrupted_with_the_shell_status(signum, status):
    with pytest.raises(Interrupted) as exc, handle_signals():
        os.kill(os.getpid(), signum)
        time.sleep(1)
    assert exc.value.signum == signum and exit_status(exc.value) == status
    assert isinstance(exc.value, KeyboardInterrupt)
    assert exit_status(KeyboardInterrupt()) == 130


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_deferred_signals_only_note_the_signal_until_it_is_checked(signum):
    # the Ray driver polls between calls into Ray instead of being unwound inside one
    with handle_signals():
        outer = signal.getsignal(signum)
        with deferred_signals():
            os.kill(os.getpid(), signum)
            time.sleep(0.05)  # a raising handler would have fired by now
            assert pending_signal() == signum
        assert signal.getsignal(signum) is outer
        with pytest.raises(Interrupted) as exc:
            raise_if_interrupted()
        assert exc.value.signum == signum and pending_signal() is None


def test_handlers_are_restored():
    before = signal.getsignal(signal.SIGTERM)
    with handle_signals():
        pass
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_swallowed_signal_is_raised_at_the_next_check():
    with handle_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        except KeyboardInterrupt:
            pass  # what a solver callback does
        assert pending_signal() == signal.SIGTERM
        with pytest.raises(Interrupted) as exc:
            raise_if_interrupted()
        assert exc.value.signum == signal.SIGTERM
        raise_if_interrupted()  # consumed


def _wait_for_handler(pid: int, signum: int, timeout: float = 30.0) -> None:
    """Wait until process ``pid`` catches ``signum`` (its handler is installed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/status") as fh:
            caught = next(int(ln.split()[1], 16) for ln in fh if ln.startswith("SigCgt"))
        if caught & (1 << (signum - 1)):
            return
        time.sleep(0.02)
    raise TimeoutError(f"process {pid} never installed a handler for signal {signum}")


def test_sigterm_ends_a_cli_run_with_143_and_a_message(tmp_path):
    cmd = [sys.executable, "-m", "ctrlbench.cli", "run", "ctrlbench/PMSMCurrent-v0", "pid",
           "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    _wait_for_handler(proc.pid, signal.SIGTERM)
    time.sleep(0.5)  # inside the 10,000-step GEM episode (~1 s)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err


def test_run_script_exits_2_on_bad_flags_and_130_143_on_interrupts(capsys):
    from ctrlbench.interrupt import run_script

    def bad() -> None:
        raise ValueError("study.seeds = 0 is out of range")

    assert run_script(bad, lambda args: 0) == 2
    assert "error: study.seeds = 0" in capsys.readouterr().err
    assert run_script(lambda: "args", lambda args: None) == 0
    assert run_script(lambda: "args", lambda args: 3) == 3

    def stopped(args: object) -> int:
        raise Interrupted(signal.SIGTERM)

    assert run_script(lambda: "args", stopped) == 143
    assert "rerun the same command to resume" in capsys.readouterr().err
