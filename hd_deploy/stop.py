"""Stopping a long training loop without losing its work.

The first Ctrl-C (SIGINT) or SIGTERM (``kill``, a scheduler's preemption) asks the loop to
stop at the end of the iteration or epoch it is in, with a checkpoint written there, so
that ``--resume`` goes on from the last finished step instead of the last periodic
checkpoint. A second Ctrl-C stops at once (the work since the last checkpoint is lost).

Worker processes ignore SIGINT (:func:`ignore_interrupt`): a terminal's Ctrl-C reaches the
whole process group, and the parent alone decides how to stop, closing its workers.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any

MESSAGE = (
    "stopping at the end of this {unit} (a checkpoint is written there; --resume goes on); "
    "Ctrl-C again stops at once"
)


class GracefulStop:
    """Context manager: ``requested`` turns true on the first SIGINT or SIGTERM.

    Outside the main thread (where Python cannot install signal handlers) it does nothing
    and ``requested`` stays false.

    Args:
        unit: What the loop finishes before it stops ("iteration", "epoch"), for the
            message on stderr.
        message: That message, with ``{unit}`` in it (default: a checkpoint is written).
    """

    def __init__(self, unit: str = "iteration", message: str = MESSAGE):
        self.unit = unit
        self.message = message
        self.requested = False
        self.signal_name = ""
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if not self.requested:
            self.requested = True
            self.signal_name = signal.Signals(signum).name
            print(f"\n{self.message.format(unit=self.unit)}", file=sys.stderr, flush=True)


def ignore_interrupt() -> None:
    """In a worker process: leave SIGINT to the parent (see the module's docstring)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
