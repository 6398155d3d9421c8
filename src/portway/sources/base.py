"""The seam every outside configuration source implements, and the supervisor that runs
them as tasks of the control process.

A source's ``run`` loops for as long as the node runs: it reconnects with back-off and
handles its own errors. The supervisor is the last line: if ``run`` still raises, the
error is logged, the source is shown as down and started again after a pause, so a
broken source never takes the node (the API, the data plane, the other sources) down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

log = logging.getLogger("portway.sources")

STARTING = "starting"
UP = "up"
DOWN = "down"


class Source(Protocol):
    """``name`` is stamped on everything the source creates (proxies, backends, the
    change log); ``state`` is one of STARTING, UP, DOWN; ``outcomes`` counts handled
    events by outcome ("applied", "refused", "malformed", ...)."""

    name: str
    state: str
    outcomes: dict[str, int]

    async def run(self) -> None: ...


class SourceSet:
    """Runs sources as tasks; reports their states and event counts."""

    def __init__(self, sources: Sequence[Source], *, restart_delay: float = 5.0) -> None:
        self._sources = list(sources)
        self._restart_delay = restart_delay
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for source in self._sources:
            self._tasks.append(asyncio.create_task(self._keep(source), name=source.name))

    async def _keep(self, source: Source) -> None:
        while True:
            try:
                await source.run()
                log.warning("source %s stopped by itself; starting it again", source.name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("source %s failed; starting it again", source.name)
            source.state = DOWN
            await asyncio.sleep(self._restart_delay)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def states(self) -> dict[str, str]:
        return {source.name: source.state for source in self._sources}

    def gauges(self) -> Mapping[str, tuple[str, Iterable[tuple[dict[str, str], float]]]]:
        """``portway_source_up`` and ``portway_source_events_total`` for /metrics."""
        up = [({"source": s.name}, 1.0 if s.state == UP else 0.0) for s in self._sources]
        events = [
            ({"source": s.name, "outcome": outcome}, float(count))
            for s in self._sources
            for outcome, count in sorted(s.outcomes.items())
        ]
        return {
            "portway_source_up": ("1 while the source is connected and applying.", up),
            "portway_source_events_total": ("Events a source handled, by outcome.", events),
        }
