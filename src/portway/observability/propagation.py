"""How long a committed change takes to reach traffic on this node: from the moment the
node hears of it (its own commit, another node's notification, its poll) to the moment
every serving process has applied a snapshot that holds it.

A snapshot carries every change heard before it was built, so each published version is
timed from its oldest change; a version that the data plane skips over (a worker sent a
merged plan) is timed when a newer one lands.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from portway.observability.metrics import new_row, observe_into

NAME = "portway_change_applied_seconds"
HELP = "Change heard by this node to applied by every serving process (oldest per snapshot)."


class Propagation:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._waiting: deque[tuple[int, float]] = deque()  # (version, oldest change heard)
        self.row = new_row()

    def published(self, version: int, heard_at: float | None) -> None:
        """``version`` went to the data plane; ``heard_at``: its oldest change's time (None:
        no change of this node's hearing, as at start-up)."""
        if heard_at is not None:
            self._waiting.append((version, heard_at))

    def oldest_waiting(self) -> float | None:
        """When the oldest change published but not yet applied everywhere was heard."""
        return self._waiting[0][1] if self._waiting else None

    def applied(self, version: int) -> None:
        """Every serving process now serves ``version`` (or a newer one)."""
        now = self._clock()
        while self._waiting and self._waiting[0][0] <= version:
            _, heard_at = self._waiting.popleft()
            observe_into(self.row, now - heard_at)
