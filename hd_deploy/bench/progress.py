"""A rich progress bar with a status line, or nothing when hidden."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Progress:
    """One bar of ``total`` units; :meth:`status` says what runs now.

    Args:
        total: Units of work.
        show: Draw the bar (False: every call is a no-op).
    """

    def __init__(self, total: int, *, show: bool) -> None:
        self.show = show
        self.total = total
        self._bar: Any = None
        self._task: Any = None

    @contextmanager
    def running(self) -> Iterator[Progress]:
        """Draw the bar inside the block."""
        if not self.show:
            yield self
            return
        from hd_deploy.train.runlog import progress_bar

        with progress_bar() as bar:
            self._bar = bar
            self._task = bar.add_task("hd-bench", total=self.total, status="")
            try:
                yield self
            finally:
                self._bar = None

    def status(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, status=text)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)
