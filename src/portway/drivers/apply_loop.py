"""The one task that applies snapshots to an external data plane, shared by the drivers.

A driver composes an ``ApplyLoop`` and hands it its ``round``: render and carry out one
snapshot with the current health verdicts. The loop owns what every driver needs
around that:

- a mailbox of one: ``offer`` keeps only the latest snapshot and ``set_down`` the latest
  verdicts, so a burst of changes is one round (envoy's rule: the latest consistent
  snapshot wins);
- the outcome: ``applied_version``, the version refused last, ``errors`` (why), the
  count of refusals and the ``problems`` the applied render reported;
- ``wait_applied``, for callers that must know a version is in force;
- ``rerender``, for what the round reads besides the snapshot and the verdicts (the
  TLS ticket keys): one more round, on the snapshot in force.

A refused snapshot is not retried: the next snapshot is. The verdicts are not held up
by a refused snapshot either: they are rendered onto the last good one meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from portway.drivers.problems import Problem
from portway.errors import PortwayError
from portway.router import Snapshot

Target = tuple[str, str]  # (proxy id, backend id), as the health monitor names them
Down = frozenset[Target]
Round = Callable[[Snapshot, Down], Awaitable[tuple[Problem, ...]]]


class ApplyLoop:
    """Latest snapshot in, one round at a time out; ``name`` is the daemon's, for logs."""

    def __init__(self, round_: Round, *, name: str, delay: Callable[[], float]) -> None:
        """``delay``: seconds to wait once woken before a round (the rest of a burst
        joins in meanwhile)."""
        self._round = round_
        self._name = name
        self._delay = delay
        self._log = logging.getLogger(f"portway.drivers.{name.lower()}")
        self.applied_version: int | None = None
        self.refused_version: int | None = None
        self.refusals = 0  # snapshots (or verdicts) the daemon refused, since start
        self.errors: tuple[str, ...] = ()
        self.problems: tuple[Problem, ...] = ()
        self._latest: Snapshot | None = None
        self._good: Snapshot | None = None  # the last snapshot applied
        self._down: Down = frozenset()
        self._applied_down: Down = frozenset()
        self._rerender = False
        self._wake = asyncio.Event()
        self._done = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self._name}-driver")

    def offer(self, snapshot: Snapshot) -> None:
        """Apply ``snapshot`` soon (on the loop's event loop); an older one is ignored."""
        if self._latest is None or snapshot.version >= self._latest.version:
            self._latest = snapshot
            self._wake.set()

    def set_down(self, down: Down) -> None:
        """The members the active checks declare down, as a whole set."""
        if down != self._down:
            self._down = down
            self._wake.set()

    def rerender(self) -> None:
        """Something the round reads outside the snapshot changed: render again."""
        self._rerender = True
        self._wake.set()

    def report(self, message: str) -> None:
        """An error found outside a round (the daemon exited): shown until one applies."""
        self._log.error("%s", message)
        self.errors = (message,)

    async def wait_applied(self, version: int, timeout: float = 30.0) -> bool:
        """Wait until ``version`` (or a later one) is applied or refused; True if applied."""

        def done() -> bool:
            applied, refused = self.applied_version or 0, self.refused_version or 0
            return applied >= version or refused >= version

        async with self._done:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait_for(done), timeout)
        return (self.applied_version or 0) >= version

    async def settled(self, timeout: float = 30.0) -> Snapshot | None:
        """The snapshot in force once the latest one offered is applied or refused: what
        an action that must follow every snapshot before it (a purge) acts on."""
        if self._latest is not None:
            await self.wait_applied(self._latest.version, timeout)
        return self._good

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _next(self) -> Snapshot | None:
        """What the round should apply now, None when the daemon already serves it."""
        latest = self._latest
        if latest is None:
            return None
        if latest.version != self.refused_version:
            fresh = latest.version > (self.applied_version or -1)
            return latest if fresh or self._down != self._applied_down else None
        good = self._good  # refused: only new verdicts are worth a round, on the good one
        return good if good is not None and self._down != self._applied_down else None

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self._delay())
            self._wake.clear()
            rerender, self._rerender = self._rerender, False
            snapshot = self._next() or (self._good if rerender else None)
            if snapshot is None:
                continue  # nothing applied yet: the first snapshot's round reads it all
            down = self._down
            try:
                problems = await self._round(snapshot, down)
            except PortwayError as err:
                self._refused(snapshot, down, err.message)
            except OSError as err:
                self._refused(snapshot, down, f"{self._name} files could not be written: {err}")
            except Exception as err:  # a bug must not end the only task that applies
                self._log.exception(
                    "applying snapshot %s to %s failed", snapshot.version, self._name
                )
                self._refused(snapshot, down, f"applying to {self._name} failed: {err!r}")
            else:
                self._accepted(snapshot, down, problems)
            async with self._done:
                self._done.notify_all()

    def _accepted(self, snapshot: Snapshot, down: Down, problems: tuple[Problem, ...]) -> None:
        self.applied_version = snapshot.version
        self._good, self._applied_down = snapshot, down
        self.problems = problems
        if snapshot.version > (self.refused_version or -1):
            self.errors = ()  # else verdicts went onto the good one: the refusal stands

    def _refused(self, snapshot: Snapshot, down: Down, message: str) -> None:
        self._log.error("%s", message)
        self.refusals += 1
        self._applied_down = down  # not retried until the verdicts change again
        if snapshot is not self._good:
            self.refused_version = snapshot.version
        self.errors = (message,)
