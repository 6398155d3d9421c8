"""One log line when a repeated task starts failing, one when it works again.

The reconciler, the store watcher and the node reporter retry every second or so while
the store is unreachable; a line (or a traceback) per retry buries the one line that
matters under thousands during an outage of a few minutes.
"""

from __future__ import annotations

import logging

from portway.errors import PortwayError


class Outage:
    """The failing/working state of one retried task. Not thread-safe: one task owns it."""

    def __init__(self, log: logging.Logger, task: str) -> None:
        self._log = log
        self._task = task
        self.failures = 0  # consecutive failures; 0 while the task works

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(self, exc: BaseException) -> None:
        """Log the first failure of an outage; count the rest silently."""
        if not self.failures:
            # Portway's own errors carry a message meant for the operator; anything else
            # is a bug or an unexpected third-party error, where the traceback is the point.
            self._log.warning(
                "%s failed: %s; retrying, and logging again only when it works",
                self._task,
                exc,
                exc_info=not isinstance(exc, PortwayError),
            )
        self.failures += 1

    def worked(self) -> None:
        """Log the end of an outage, once."""
        if self.failures:
            self._log.info("%s works again after %d failed attempts", self._task, self.failures)
        self.failures = 0
