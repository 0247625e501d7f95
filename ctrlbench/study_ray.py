"""The Ray backend of studies: each run a Ray task, records written exactly as locally.

Each task calls :func:`ctrlbench.study.execute_run` in a Ray worker, which writes the run's
trajectory and record into the study folder (atomically, as the local pool does), so the study
folder must be on a file system every Ray node sees (local Ray: this machine). The driver keeps
the guarantees of :mod:`ctrlbench.study_pool`:

- a run whose Ray worker dies (killed, out of memory, node lost) is recorded as failed, naming
  the Ray error; tasks are never retried by Ray (``max_retries=0``), so a run is recorded once;
- a run past ``timeout_s`` is cancelled (its worker killed) and recorded as failed, naming the
  limit; the clock starts when the task is submitted, so on a cluster without room for
  ``workers`` tasks at once the wait in Ray's queue counts too;
- an interrupt (SIGINT / SIGTERM) or an error in the driver cancels every task in flight
  (``force=True``), waits until Ray has settled them and shuts down a Ray it started; runs in
  flight are not recorded, a rerun does them. While the driver is inside Ray a signal is only
  noted (:func:`ctrlbench.interrupt.deferred_signals`) and acted on within ``_POLL_S``
  seconds, so it never unwinds a call into Ray's core worker. A Ray started here shares the
  driver's fate (a ``kill -9`` of the driver ends it).

Without ``address`` a local Ray is started for the study (``num_cpus`` = runs in flight x CPUs a
run declares, no dashboard) and stopped at its end; a Ray this process already started
(``ray.init`` by the caller) is used as it is.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Generator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ctrlbench.interrupt import deferred_signals, pending_signal, raise_if_interrupted
from ctrlbench.study_pool import StudyWorkerError, lost_run_record, timeout_error

if TYPE_CHECKING:
    from ctrlbench.study_spec import RunSpec

__all__ = ["RAY_INSTALL", "MissingExtraError", "import_ray", "run_ray", "start_ray"]

RAY_INSTALL = "pip install 'ctrlbench[ray]'  (or: pip install ray==2.60.0)"
"""How to install the Ray backend."""

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_preloaded: set[str] = set()  # per Ray worker process: the .py specs it has run


class MissingExtraError(ImportError):
    """An optional dependency a command needs is not installed; the message says how to
    install it."""


def import_ray() -> Any:
    """The ``ray`` module, or :class:`MissingExtraError` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError(f"the Ray backend needs ray, which is not installed ({exc}); "
                                f"install it with: {RAY_INSTALL}") from None
    return ray


def ray_run(run: RunSpec, out: str, sys_path: list[str], preload: list[str]) -> dict[str, Any]:
    """The body of one run's Ray task: the driver's import path, the ``.py`` spec's own
    registrations (once per worker), then :func:`~ctrlbench.study.execute_run`."""
    for p in reversed(sys_path):
        if p not in sys.path:
            sys.path.insert(0, p)
    import runpy

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    for path in preload:
        if path not in _preloaded:
            runpy.run_path(path)
            _preloaded.add(path)
    from ctrlbench.study import execute_run

    return execute_run(run, out)


def start_ray(address: str | None, workers: int, cpus: float = 1.0) -> bool:
    """Connect to ``address`` or start a local Ray (``workers x cpus`` CPUs) unless this process
    is connected already; ``True`` when this call connected (the caller then ends it with
    ``ray.shutdown()``)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    import ctrlbench

    pkg_root = str(Path(ctrlbench.__file__).resolve().parents[1])
    env = {**dict.fromkeys(_THREAD_VARS, "1"),
           "PYTHONPATH": os.pathsep.join(p for p in (pkg_root, os.environ.get("PYTHONPATH"))
                                         if p)}
    kwargs: dict[str, Any] = {"log_to_driver": False, "runtime_env": {"env_vars": env}}
    if address is None:
        kwargs.update(num_cpus=max(1, round(workers * max(cpus, 1.0))),
                      include_dashboard=False)
    handlers = _python_handlers()
    try:
        ray.init(address=address, **kwargs)
    except Exception as exc:  # unreachable address, no cluster at "auto", ...
        where = f"the Ray cluster at {address!r}" if address else "a local Ray"
        raise StudyWorkerError(f"cannot start or reach {where}: {type(exc).__name__}: "
                               f"{exc}") from None
    finally:
        _restore(handlers)
    return True


def _python_handlers() -> dict[int, Any]:
    """The Python-level SIGINT / SIGTERM handlers now (empty off the main thread)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {int(s): signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}


def _restore(handlers: dict[int, Any]) -> None:
    """Re-install ``handlers``: Ray's core worker installs a C-level failure handler for
    SIGTERM in the driver, which would crash it instead of interrupting it cleanly
    (:mod:`ctrlbench.interrupt`)."""
    import signal

    for signum, handler in handlers.items():
        if handler is not None:
            signal.signal(signum, handler)


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def run_ray(
    todo: Sequence[RunSpec],
    out: Path,
    workers: int,
    preload: Sequence[str] = (),
    *,
    address: str | None = None,
    resources: Mapping[str, float] | None = None,
    timeout_s: float | None = None,
) -> Generator[dict[str, Any], None, None]:
    """Run ``todo`` as Ray tasks, at most ``workers`` in flight; yield each record as it comes.

    ``resources`` (``num_cpus``, default 1; ``num_gpus``, default 0) are declared for each task.
    Close the iterator (or let an interrupt pass through it) to stop: tasks in flight are
    cancelled and a Ray started here is shut down before it returns.
    """
    ray = import_ray()
    res = {"num_cpus": 1.0, "num_gpus": 0.0, **(resources or {})}
    started = start_ray(address, workers, res["num_cpus"])
    task = ray.remote(ray_run).options(max_retries=0, retry_exceptions=False, **res)
    queue = list(reversed(todo))
    flying: dict[Any, tuple[RunSpec, float]] = {}
    cancelled: dict[Any, RunSpec] = {}
    sys_path, out_s, pre = list(sys.path), str(out), list(preload)
    try:
        # A signal must not unwind a call into Ray's core worker (a task submission cut short
        # crashed the driver in NormalTaskSubmitter): it is noted, then acted on between calls.
        with deferred_signals():
            while (queue or flying or cancelled) and pending_signal() is None:
                while queue and len(flying) + len(cancelled) < workers:
                    run = queue.pop()
                    flying[task.remote(run, out_s, sys_path, pre)] = (run, time.monotonic())
                wait_s = _POLL_S
                if timeout_s is not None and flying:
                    first = min(t for _, t in flying.values())
                    wait_s = min(wait_s, max(0.0, first + timeout_s - time.monotonic()) + 0.01)
                ready, _ = ray.wait([*flying, *cancelled], num_returns=1, timeout=wait_s)
                for ref in ready:
                    yield _settle(ray, ref, flying, cancelled, out, timeout_s)
                if timeout_s is not None:
                    now = time.monotonic()
                    for ref, (_, t0) in list(flying.items()):
                        if now - t0 > timeout_s:
                            ray.cancel(ref, force=True, recursive=True)
                            cancelled[ref] = flying.pop(ref)[0]
    finally:
        with deferred_signals():  # a second signal must not cut the clean-up short either
            _cancel_all(ray, [*flying, *cancelled])
            if started:
                ray.shutdown()
    raise_if_interrupted()


_POLL_S = 0.2
"""Longest wait inside Ray before the driver looks for a pending signal (seconds)."""


def _cancel_all(ray: Any, refs: list[Any]) -> None:
    """Force-cancel ``refs`` and wait (a few seconds at most) until Ray has settled them, so
    no submission or cancellation is in flight when Ray is shut down."""
    for ref in refs:
        try:
            ray.cancel(ref, force=True, recursive=True)
        except Exception:  # already finished or its worker gone
            pass
    if refs:
        try:
            ray.wait(refs, num_returns=len(refs), timeout=10.0)
        except Exception:  # Ray already going down: nothing left to wait for
            pass


def _settle(
    ray: Any, ref: Any, flying: dict[Any, tuple[RunSpec, float]], cancelled: dict[Any, RunSpec],
    out: Path, timeout_s: float | None,
) -> dict[str, Any]:
    """The record of a finished task: its own, or a failure for a lost or timed-out one."""
    was_cancelled = ref in cancelled
    run = cancelled.pop(ref) if was_cancelled else flying.pop(ref)[0]
    try:
        return dict(ray.get(ref))
    except ray.exceptions.RayTaskError as exc:  # execute_run itself failed: writing the record
        if was_cancelled:
            return lost_run_record(out, run, timeout_error(float(timeout_s or 0)))
        raise StudyWorkerError(f"Ray task could not record run {run.run_id}: "
                               f"{_describe(exc.cause if exc.cause else exc)}") from None
    except ray.exceptions.TaskCancelledError:  # cancelled by us: only for its timeout
        return lost_run_record(out, run, timeout_error(float(timeout_s or 0)))
    except ray.exceptions.RayError as exc:  # its worker died (also when noticed after a cancel)
        return lost_run_record(out, run, f"Ray worker died while running it ({_describe(exc)})")
