"""Clean interruption: SIGINT and SIGTERM end a command with a message, partial work kept, and the
conventional exit status (130 / 143), never a traceback.

Inside :func:`handle_signals` both signals raise :class:`Interrupted` (a ``KeyboardInterrupt``, so
code that already cleans up on Ctrl-C cleans up on SIGTERM too) and set a pending flag. Some
solvers swallow exceptions raised inside their callbacks (scipy's ``ode``, used by
gym-electric-motor); loops therefore call :func:`raise_if_interrupted` between steps, which
re-raises a signal that was swallowed.

Typical use in a command::

    with handle_signals():
        for k in range(steps):
            raise_if_interrupted()
            ...
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

__all__ = [
    "Interrupted",
    "deferred_signals",
    "exit_status",
    "handle_signals",
    "pending_signal",
    "raise_if_interrupted",
    "run_script",
]

T = TypeVar("T")

_pending: int | None = None


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when SIGINT or SIGTERM arrives inside :func:`handle_signals`."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


def exit_status(exc: BaseException) -> int:
    """The shell convention ``128 + signal``: 130 for SIGINT (or a plain ``KeyboardInterrupt``),
    143 for SIGTERM."""
    signum = getattr(exc, "signum", signal.SIGINT)
    return 128 + int(signum)


def _handler(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = signum
    raise Interrupted(signum)


def pending_signal() -> int | None:
    """The signal received inside :func:`handle_signals` and not yet re-raised, if any."""
    return _pending


def raise_if_interrupted() -> None:
    """Raise :class:`Interrupted` if a signal arrived and was swallowed by the code it hit."""
    global _pending
    if _pending is not None:
        signum, _pending = _pending, None
        raise Interrupted(signum)


@contextmanager
def _handlers(handler: Callable[[int, FrameType | None], None]) -> Iterator[bool]:
    """``handler`` for SIGINT and SIGTERM inside the block, the previous ones restored after;
    yields ``False`` (and changes nothing) off the main thread, where Python cannot install
    handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield True
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextmanager
def handle_signals() -> Iterator[None]:
    """Route SIGINT and SIGTERM to :class:`Interrupted` for the duration of the block.

    Outside the main thread (where Python cannot install handlers) this is a no-op. The previous
    handlers are restored on exit.
    """
    global _pending
    with _handlers(_handler) as installed:
        if installed:
            _pending = None
        try:
            yield
        finally:
            if installed:
                _pending = None


def _defer(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = signum


@contextmanager
def deferred_signals() -> Iterator[None]:
    """Inside the block SIGINT and SIGTERM only set the pending flag (:func:`pending_signal`);
    the code polls it and re-raises with :func:`raise_if_interrupted` where it is safe.

    For loops that spend their time in foreign code that must not be unwound mid-call (Ray's
    core worker crashes the process when a Python exception interrupts a task submission).
    A signal already pending stays pending. Outside the main thread this is a no-op; the
    previous handlers are restored on exit.
    """
    with _handlers(_defer):
        yield


def run_script(parse: Callable[[], T], body: Callable[[T], int | None]) -> int:
    """The ``main`` of a study script: parse its flags, then run it with clean interruption.

    A ``ValueError`` from ``parse`` (a bad flag: :func:`ctrlbench.options.parse_flags` names the
    value) prints ``error: ...`` and returns 2; ``body(args)`` runs inside
    :func:`handle_signals`, and Ctrl-C / SIGTERM return 130 / 143 with a note that finished work
    is kept. Returns ``body``'s status (``None`` counts as 0).
    """
    try:
        args = parse()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with handle_signals():
            status = body(args)
    except KeyboardInterrupt as exc:
        print("interrupted; finished work is kept, rerun the same command to resume",
              file=sys.stderr)
        return exit_status(exc)
    return 0 if status is None else status
