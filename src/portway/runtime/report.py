"""What the control process reports about its node: backend health for the API, and the
Prometheus ``/metrics`` page merged from what the data plane handle reports.

``/metrics`` names every tenant's proxies and their traffic, so it is served on a
listener of its own (``routes``, no token: bind it where only the scraper can reach
it) and, on the API listener, to admin tokens only (``admin_routes``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from portway.api.endpoint import token_of
from portway.errors import ForbiddenError
from portway.health.monitor import HealthMonitor
from portway.health.state import DOWN, DRAINING, UNKNOWN, UP
from portway.observability import propagation as change_propagation
from portway.observability.metrics import merge, render
from portway.observability.propagation import Propagation
from portway.observability.readiness import Readiness
from portway.reconciler.reconciler import Reconciler
from portway.runtime.plane_handle import DataPlaneHandle
from portway.service import Service

Gauge = tuple[str, Iterable[tuple[dict[str, str], float]]]  # help, samples
_STATUS_VALUE = {UP: 1.0, DOWN: 0.0, UNKNOWN: -1.0, DRAINING: 1.0}


class NodeReport:
    def __init__(
        self,
        reconciler: Reconciler,
        monitor: HealthMonitor,
        handle: DataPlaneHandle,
        *,
        extra: Callable[[], Mapping[str, Gauge]] | None = None,
        propagation: Propagation | None = None,
    ) -> None:
        """``extra``: more metrics, rendered with the node's (the sources' gauges);
        ``propagation``: the change-to-applied histogram."""
        self._propagation = propagation
        self._reconciler = reconciler
        self._monitor = monitor
        self._handle = handle
        self._extra = extra

    def backend_health(self, proxy_id: str, backend_id: str) -> dict[str, Any]:
        """``health`` (up/down/unknown/draining), ``last_check`` and ``last_error``."""
        target = (proxy_id, backend_id)
        health = self._monitor.health.get(target)
        status = health.status if health is not None else UNKNOWN
        error = health.last_error if health is not None else None
        if self._handle.is_ejected(target):
            status, error = DOWN, error or "ejected after consecutive failures (passive check)"
        snapshot = self._reconciler.snapshot
        route = snapshot.routes.get(proxy_id) if snapshot is not None else None
        draining = route is not None and any(
            b.id == backend_id and b.draining for b in route.proxy.backends
        )
        if draining and status != DOWN:
            status = DRAINING
        last = health.last_check if health is not None else None
        return {
            "health": status,
            "last_check": None
            if last is None
            else dt.datetime.fromtimestamp(last, dt.UTC).isoformat(),
            "last_error": error,
        }

    def readiness(self) -> Readiness:
        snapshot = self._reconciler.snapshot
        built = snapshot.version if snapshot is not None else 0
        store = max(self._reconciler.newest_revision, built)
        applied = self._handle.applied_version
        # The oldest change heard and not yet applied: still to publish, or published
        # and waiting on a worker. Behind with neither known (a revision only read):
        # no allowance.
        heard = [self._reconciler.pending_since]
        if self._propagation is not None:
            heard.append(self._propagation.oldest_waiting())
        known = [t for t in heard if t is not None]
        waited = time.monotonic() - min(known) if known else float("inf")
        if applied >= store:
            waited = 0.0
        return Readiness(store=store, built=built, applied=applied, waited=waited)

    def metrics_text(self) -> str:
        stats = self._handle.stats()
        snapshot = self._reconciler.snapshot
        version = snapshot.version if snapshot is not None else 0
        gauges: dict[str, Gauge] = {
            "portway_open_connections": (
                "Client connections open on the data plane.",
                [({}, float(sum(s.open_connections for s in stats)))],
            ),
            "portway_snapshot_version": (
                "Store revision of the newest snapshot built.",
                [({}, float(version))],
            ),
            "portway_snapshot_applied_version": (
                "Snapshot version every data plane has applied.",
                [({}, float(self._handle.applied_version))],
            ),
            "portway_snapshot_build_seconds": (
                "Time the last snapshot took to build.",
                [({}, self._reconciler.last_build_seconds)],
            ),
            "portway_snapshot_publish_seconds": (
                "Store commit seen to snapshot published, for the last snapshot.",
                [({}, self._reconciler.last_publish_seconds)],
            ),
            "portway_snapshot_apply_seconds": (
                "Snapshot published to applied by every worker (0 in-process).",
                [({}, self._handle.last_apply_seconds)],
            ),
            "portway_proxies_disabled": (
                "Stored proxies left out of the snapshot because they break a rule.",
                [({"project": project}, float(n)) for project, n in self._disabled_counts()],
            ),
            "portway_backend_up": (
                "1 up, 0 down, -1 not yet checked (active checks).",
                [
                    ({"proxy": p, "backend": b}, _STATUS_VALUE.get(h.status, -1.0))
                    for (p, b), h in sorted(self._monitor.health.items())
                ],
            ),
        }
        if self._extra is not None:
            gauges.update(self._extra())
        histograms = {}
        if self._propagation is not None:
            name, help_text = change_propagation.NAME, change_propagation.HELP
            histograms[name] = (help_text, self._propagation.row)
        return render(merge(s.metrics for s in stats), gauges, histograms)

    def _disabled_counts(self) -> list[tuple[str, int]]:
        counts = Counter(d.project for d in self._reconciler.disabled.values())
        return sorted(counts.items())

    def _page(self) -> PlainTextResponse:
        return PlainTextResponse(
            self.metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    def routes(self) -> list[Route]:
        """``/metrics`` for the metrics listener: no token."""

        async def metrics(_request: Request) -> PlainTextResponse:
            return self._page()

        return [Route("/metrics", metrics, methods=["GET"])]

    def admin_routes(self, service: Service) -> list[Route]:
        """``/metrics`` for the API listener: admin tokens only (401 without a valid
        token, 403 for a project's token); ``Authorization: Bearer`` works too."""

        async def metrics(request: Request) -> PlainTextResponse:
            actor = await run_in_threadpool(service.authenticate, token_of(request))
            if not actor.is_admin:
                raise ForbiddenError("metrics name every project: an admin token is required")
            return self._page()

        return [Route("/metrics", metrics, methods=["GET"])]
