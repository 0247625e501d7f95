"""The study's worker processes: they cannot outlive the driver, hide a crash or be half-stopped.

- Each worker runs in its own process group and ignores SIGINT, so Ctrl-C at the terminal reaches
  only the driver; the driver then kills its workers and exits. Runs a worker finished are
  recorded; runs in flight are not (a rerun does them), and none is recorded as failed.
- A worker exits when the driver dies, even by ``kill -9``: ``PR_SET_PDEATHSIG`` on Linux, and a
  watchdog thread comparing the parent pid everywhere.
- A worker that dies (killed, crashed) has its run recorded as failed ("worker process died") and
  is replaced by a fresh one; the study goes on.
- A run that takes longer than the study's ``timeout_s`` has its worker killed and is recorded as
  failed, naming the timeout; a fresh worker takes the next run.
- Workers run one BLAS/OpenMP/torch thread each (``OMP_NUM_THREADS=1`` and friends in their
  environment, read when numpy or torch loads).

Workers are plain ``python -c`` processes talking to the driver over a socket pair; they import
nothing of the driver's ``__main__``.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Generator, Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctrlbench.records import write_record

if TYPE_CHECKING:
    from ctrlbench.study import RunSpec

__all__ = ["StudyWorkerError", "lost_run_record", "prepare_worker", "run_pool", "timeout_error",
           "worker_main"]

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_PR_SET_PDEATHSIG = 1
_WATCH_PERIOD_S = 0.5


class StudyWorkerError(RuntimeError):
    """A worker could not start (e.g. a ``.py`` spec failed to load in it) or write a record."""


def _die_with(driver_pid: int) -> None:
    """Exit as soon as the driver process is gone (``kill -9`` included)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the watchdog remains
            pass
    if os.getppid() != driver_pid:  # the driver died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(_WATCH_PERIOD_S)
            if os.getppid() != driver_pid:
                os._exit(1)

    threading.Thread(target=watch, name="ctrlbench-watchdog", daemon=True).start()


def prepare_worker(driver_pid: int) -> None:
    """Set-up of a ctrlbench pool worker (the study pool's, and any ``ProcessPoolExecutor``
    ``initializer``): Ctrl-C left to the driver, one BLAS/torch thread, exit when the driver
    ``driver_pid`` dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops us
    os.environ.update(dict.fromkeys(_THREAD_VARS, "1"))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    _die_with(driver_pid)


def worker_main() -> None:
    """Entry point of a worker process: ``python -c ... <socket fd> <driver pid>``.

    Receives ``{"sys_path", "out", "preload"}``, then runs, answering each with
    ``("record", record)``; ``None`` or a closed socket ends it.
    """
    if hasattr(signal, "SIGTTOU"):  # a background group may write to the terminal (stty tostop)
        signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    fd, driver_pid = int(sys.argv[1]), int(sys.argv[2])
    prepare_worker(driver_pid)
    conn = Connection(fd)
    try:
        _serve(conn)
    except OSError:  # the driver is gone (its end of the socket closed): nothing to report to
        pass


def _serve(conn: Connection) -> None:
    try:
        init = conn.recv()
        sys.path[:] = init["sys_path"]
        for path in init["preload"]:
            runpy.run_path(path)
        from ctrlbench.study import execute_run
    except EOFError:
        return
    except Exception as exc:
        conn.send(("fatal", f"worker start-up failed: {type(exc).__name__}: {exc}"))
        return
    while True:
        try:
            run = conn.recv()
        except EOFError:
            return
        if run is None:
            return
        try:
            record = execute_run(run, init["out"])
        except Exception as exc:  # writing the record failed (disk full, folder removed, ...)
            detail = traceback.format_exception_only(exc)[-1].strip()
            conn.send(("fatal", f"worker could not record run {run.run_id}: {detail}"))
            return
        conn.send(("record", record))


class _Worker:
    """One worker process, the socket to it and the run it is doing."""

    def __init__(self, out: Path, preload: Sequence[str]) -> None:
        import ctrlbench

        here, child = socket.socketpair()
        pkg_root = str(Path(ctrlbench.__file__).resolve().parents[1])
        env = {**os.environ, **dict.fromkeys(_THREAD_VARS, "1")}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
        code = "from ctrlbench.study_pool import worker_main; worker_main()"
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, str(child.fileno()), str(os.getpid())],
                stdin=subprocess.DEVNULL, pass_fds=(child.fileno(),), env=env, process_group=0,
            )
        except BaseException:
            here.close()
            raise
        finally:
            child.close()
        self.conn = Connection(here.detach())
        self.run: RunSpec | None = None
        self.started = 0.0
        try:
            self.conn.send({"sys_path": list(sys.path), "out": str(out),
                            "preload": list(preload)})
        except OSError:  # it died at once; assign() reports it
            pass

    def assign(self, run: RunSpec) -> bool:
        """Send ``run``; ``False`` when the worker is already gone (it never got the run)."""
        try:
            self.conn.send(run)
        except OSError:
            return False
        self.run, self.started = run, time.monotonic()
        return True

    def stop(self, graceful: bool) -> None:
        """Ask the worker to exit (``graceful``) or kill it; reap it either way."""
        if graceful:
            try:
                self.conn.send(None)
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        elif self.proc.poll() is None:
            self.proc.kill()

    def reap(self) -> int:
        self.conn.close()
        try:
            return self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # closed its socket but lives on: end it
            self.proc.kill()
            return self.proc.wait()


def _death(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def timeout_error(timeout_s: float) -> str:
    """The error of a run stopped by the study's per-run wall-clock limit."""
    return f"timed out: the run took longer than timeout_s = {timeout_s:g} s (wall clock)"


def lost_run_record(out: Path, run: RunSpec, why: str) -> dict[str, Any]:
    """The record of ``run`` after its worker stopped: its own, if it wrote one, else a failure
    saying ``why`` (written atomically, as :func:`~ctrlbench.study.execute_run` would)."""
    from dataclasses import asdict

    from ctrlbench.records import scan_records

    own = scan_records(out, {run.run_id}).records.get(run.run_id)
    if own is not None:
        return own
    record = {"run_id": run.run_id, **asdict(run), "status": "error", "error": why}
    write_record(out, record)
    return record


def _died(worker: _Worker, out: Path) -> dict[str, Any] | None:
    """The record for the run of a worker that died: its own, if it wrote one, else a failure."""
    returncode = worker.reap()
    if worker.run is None:
        return None
    return lost_run_record(out, worker.run,
                           f"worker process died ({_death(returncode)}) while running it")


def _timed_out(pool: list[_Worker], timeout_s: float | None, out: Path) -> list[dict[str, Any]]:
    """Kill the workers whose run exceeded ``timeout_s``; their runs' records (failures)."""
    if timeout_s is None:
        return []
    now, records = time.monotonic(), []
    for w in list(pool):
        if w.run is not None and now - w.started > timeout_s:
            pool.remove(w)
            w.stop(graceful=False)
            w.reap()
            records.append(lost_run_record(out, w.run, timeout_error(timeout_s)))
    return records


def _wait_s(pool: list[_Worker], timeout_s: float | None) -> float | None:
    """Seconds until the first running run reaches ``timeout_s`` (``None``: no limit)."""
    if timeout_s is None:
        return None
    ends = [w.started + timeout_s for w in pool if w.run is not None]
    return max(0.0, min(ends) - time.monotonic()) + 0.01 if ends else None


def run_pool(
    todo: Sequence[RunSpec],
    out: Path,
    workers: int,
    preload: Sequence[str] = (),
    timeout_s: float | None = None,
) -> Generator[dict[str, Any], None, None]:
    """Run ``todo`` on up to ``workers`` worker processes; yield each record as it comes.

    A run still going after ``timeout_s`` seconds (``None``: no limit) is killed with its worker
    and recorded as failed, naming the timeout.

    Close the iterator (or let an exception, e.g. an interrupt, pass through it) to stop: the
    workers are then killed and reaped before it returns.
    """
    queue = deque(todo)
    pool: list[_Worker] = []
    finished = False
    lost = 0  # workers found dead before they got a run; a few in a row means none can start
    try:
        while queue or any(w.run is not None for w in pool):
            while queue and len(pool) < workers:
                pool.append(_Worker(out, preload))
            for w in list(pool):
                if w.run is None and queue:
                    run = queue.popleft()
                    if w.assign(run):
                        continue
                    queue.appendleft(run)  # it died idle: replaced in the next round
                    pool.remove(w)
                    lost += 1
                    if lost > 2 * workers:
                        raise StudyWorkerError(f"worker processes keep exiting before they "
                                               f"start a run ({_death(w.reap())})")
                    w.reap()
            busy = {w.conn: w for w in pool if w.run is not None}
            ready = wait(list(busy), timeout=_wait_s(pool, timeout_s))
            yield from _timed_out(pool, timeout_s, out)
            for conn in ready:
                w = busy[conn]  # type: ignore[index]
                if w not in pool:  # killed for its timeout just now
                    continue
                try:
                    kind, payload = w.conn.recv()
                except (EOFError, OSError):
                    pool.remove(w)
                    record = _died(w, out)
                    if record is not None:
                        yield record
                    continue
                if kind == "fatal":
                    raise StudyWorkerError(payload)
                w.run, lost = None, 0
                yield payload
        finished = True
    finally:
        for w in pool:
            w.stop(graceful=finished)
        for w in pool:
            w.reap()
