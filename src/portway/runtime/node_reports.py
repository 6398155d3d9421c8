"""This node's report of itself to the shared store, every ``--node-report-interval``
seconds: what ``GET /v1/nodes`` and ``portway node list`` show for it.

A report that cannot be written (the store is down) is logged once per outage and tried
again at the next interval; nothing else waits for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

from portway.errors import PortwayError
from portway.model.node import Node
from portway.observability.failures import Outage
from portway.reconciler.reconciler import Reconciler
from portway.runtime.plane_handle import DataPlaneHandle
from portway.store import Store

log = logging.getLogger("portway.nodes")


class NodeReporter:
    def __init__(
        self,
        store: Store,
        reconciler: Reconciler,
        handle: DataPlaneHandle,
        identity: Node,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``identity``: the report's fixed fields (name, addresses, version, start)."""
        self._store = store
        self._reconciler = reconciler
        self._handle = handle
        self._identity = identity
        self._now = now
        self._outage = Outage(log, "node report to the store")

    def current(self) -> Node:
        applied = self._handle.applied_version
        return replace(
            self._identity,
            applied_revision=applied,
            digest=self._reconciler.digest(applied) or "",
            last_seen=self._now(),
        )

    async def report(self) -> None:
        try:
            await asyncio.to_thread(self._store.report_node, self.current())
        except PortwayError as exc:
            self._outage.failed(exc)
        else:
            self._outage.worked()

    async def run(self) -> None:
        while True:
            await self.report()
            await asyncio.sleep(self._identity.report_interval)
