"""Stop a training loop at a step boundary on SIGINT / SIGTERM, with its state saved.

Inside :class:`GracefulStop` the first SIGINT or SIGTERM only records the request and says so on
stderr: the loop finishes the step in progress, writes a checkpoint of that consistent state
and raises :class:`ctrlbench.interrupt.Interrupted` (a ``KeyboardInterrupt`` whose ``signum``
gives the exit status 130 / 143). A second signal stops at once, except inside
:meth:`GracefulStop.critical` sections (a log line or a checkpoint being written), which always
finish. Outside the main thread, where Python cannot install handlers, it does nothing.

Typical use::

    with GracefulStop() as stop:
        while step < end:
            stop.raise_if_requested(save)  # saves, then raises, when a signal came
            train_step()
            with stop.critical():
                write_log_and_checkpoint()
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType, TracebackType
from typing import Any

from ctrlbench.interrupt import Interrupted

__all__ = ["GracefulStop"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class GracefulStop:
    """Defer SIGINT / SIGTERM to the loop's next step boundary (a second one stops at once)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._critical = 0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for s in _SIGNALS:
                self._old[s] = signal.getsignal(s)
                signal.signal(s, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        self._old.clear()

    @property
    def requested(self) -> bool:
        """Whether a signal asked the loop to stop."""
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
            print(f"\n{signal.Signals(signum).name} received: finishing the current step, then "
                  f"saving a checkpoint (send it again to stop at once)", file=sys.stderr)
            return
        if self._critical:
            return  # a log line or checkpoint is being written: it finishes, then the loop stops
        raise Interrupted(signum)

    @contextmanager
    def critical(self) -> Iterator[None]:
        """A section no signal interrupts (a repeated signal waits until it is done)."""
        self._critical += 1
        try:
            yield
        finally:
            self._critical -= 1

    def raise_if_requested(self, save: Callable[[], object] | None = None) -> None:
        """At a step boundary: when a signal came, call ``save`` (uninterruptible), then raise
        :class:`~ctrlbench.interrupt.Interrupted`."""
        if self.signum is None:
            return
        if save is not None:
            with self.critical():
                save()
        raise Interrupted(self.signum)
