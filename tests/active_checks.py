"""Portway's active checks beside a data plane in a test, as ``portway serve`` runs them
whatever the data plane: a HealthMonitor on the plane's loop whose verdicts are pushed
to it (tests/conformance for every plane, tests/dataplane for tcp proxies)."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from portway.health.monitor import HealthMonitor, Target
from portway.health.state import DOWN, Health
from portway.router import Snapshot
from tests.conftest import TEST_POLICY


class ActiveChecks:
    """Portway's active checks beside a plane, as ``portway serve`` runs them whatever
    the data plane: a HealthMonitor on the plane's loop, its verdicts pushed to
    ``push`` (the built-in plane's ``set_health``, a driver's ``set_down``)."""

    def __init__(
        self,
        call: Callable[[Coroutine[Any, Any, Any]], Any],
        push: Callable[[frozenset[Target]], None],
        upstream_tls: ssl.SSLContext | None = None,
    ) -> None:
        self._call = call

        def verdicts(health: Mapping[Target, Health]) -> None:
            push(frozenset(t for t, h in health.items() if h.status == DOWN))

        async def make() -> HealthMonitor:
            return HealthMonitor(verdicts, backend_policy=TEST_POLICY, upstream_tls=upstream_tls)

        self.monitor: HealthMonitor = call(make())

    def update(self, snapshot: Snapshot) -> None:
        async def update() -> None:
            self.monitor.update(snapshot)

        self._call(update())

    def close(self) -> None:
        self._call(self.monitor.close())
