"""Active health checking for every backend of every proxy that asks for it.

One monitor runs per node (in the control process), never per worker; its verdicts are
pushed to the data plane(s) through ``on_change``. Probes of one backend are serialized
and spread over the interval with a random phase so that a big table does not probe in
bursts.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping

from portway.health.expect import parse_expected_codes
from portway.health.probe import probe
from portway.health.state import UP, Health, observe
from portway.model import Backend, Proxy
from portway.router import Snapshot

log = logging.getLogger("portway.health")

Target = tuple[str, str]  # (proxy id, backend id)


class HealthMonitor:
    """Runs the probes; ``health`` maps (proxy id, backend id) to its current Health."""

    def __init__(
        self,
        on_change: Callable[[Mapping[Target, Health]], None],
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self._on_change = on_change
        self._clock = clock
        self._rng = rng or random.Random()
        self._tasks: dict[Target, tuple[asyncio.Task[None], Proxy, Backend]] = {}
        self.health: dict[Target, Health] = {}

    def update(self, snapshot: Snapshot) -> None:
        """Start probes for new targets, restart changed ones, stop removed ones."""
        wanted: dict[Target, tuple[Proxy, Backend]] = {}
        for route in snapshot.routes.routes():
            proxy = route.proxy
            if proxy.health_check is None:
                continue
            for backend in proxy.backends:
                wanted[(proxy.id, backend.id)] = (proxy, backend)
        changed = False
        for target in list(self._tasks):
            task, proxy, backend = self._tasks[target]
            new = wanted.get(target)
            if new is None or new[0].health_check != proxy.health_check or new[1] != backend:
                task.cancel()
                del self._tasks[target]
                if new is None and self.health.pop(target, None) is not None:
                    changed = True
        for target, (proxy, backend) in wanted.items():
            if target not in self._tasks:
                task = asyncio.create_task(self._run(target, proxy, backend))
                self._tasks[target] = (task, proxy, backend)
        if changed:
            self._on_change(dict(self.health))

    async def close(self) -> None:
        for task, _, _ in self._tasks.values():
            task.cancel()
        await asyncio.gather(*(t for t, _, _ in self._tasks.values()), return_exceptions=True)
        self._tasks.clear()

    async def _run(self, target: Target, proxy: Proxy, backend: Backend) -> None:
        check = proxy.health_check
        assert check is not None
        expected = parse_expected_codes(check.expected_codes)
        host = proxy.hostname.removeprefix("*.")
        await asyncio.sleep(self._rng.uniform(0, min(check.interval, 1.0)))
        while True:
            error = await probe(backend.address, backend.port, check, expected, host)
            before = self.health.get(target, Health())
            after = observe(
                before,
                error is None,
                rise=check.rise,
                fall=check.fall,
                at=self._clock(),
                error=error,
            )
            self.health[target] = after
            if after.status != before.status:
                level = logging.INFO if after.status == UP else logging.WARNING
                log.log(
                    level,
                    "backend %s:%s of %s is %s%s",
                    backend.address,
                    backend.port,
                    proxy.hostname,
                    after.status,
                    f" ({error})" if error else "",
                )
                self._on_change(dict(self.health))
            await asyncio.sleep(check.interval)
