"""The end of every exchange: in-flight count, request metrics, access log.

Recording runs once per request, so it writes straight into the ``RequestMetrics``
dicts with keys built once per proxy (:class:`MetricKeys`, kept on the plan) instead of
building two tuples and a clamped status class per request. The row layout is the one
``RequestMetrics.observe`` keeps (bucket counts, +Inf, sum), taken from the same
``BUCKETS``, and ``export`` sees no difference.
"""

from __future__ import annotations

from bisect import bisect_left
from time import monotonic
from typing import TYPE_CHECKING, Final

from portway.observability.metrics import BUCKETS, RequestMetrics

if TYPE_CHECKING:
    from portway.dataplane.exchange import Exchange
    from portway.dataplane.responding import Responding
    from portway.dataplane.server import DataPlane

_CLASSES: Final = ("1xx", "1xx", "2xx", "3xx", "4xx", "5xx", "5xx", "5xx", "5xx", "5xx")
_ROW_SIZE: Final = len(BUCKETS) + 2


class MetricKeys:
    """One proxy's counter keys, indexed by ``status // 100`` (statuses are 3 digits)."""

    __slots__ = ("latency", "requests", "row")

    def __init__(self, project: str, label: str) -> None:
        self.requests = tuple((project, label, klass) for klass in _CLASSES)
        self.latency = (project, "")  # histograms are per project (see metrics.py)
        self.row: list[float] | None = None  # the latency row, fetched on first use

    def observe(self, metrics: RequestMetrics, status: int, seconds: float) -> None:
        """What ``metrics.observe`` does, minus the per-request key building."""
        key = self.requests[status // 100]
        requests = metrics.requests
        requests[key] = requests.get(key, 0) + 1
        row = self.row or self.fetch_row(metrics)
        row[bisect_left(BUCKETS, seconds)] += 1
        row[-1] += seconds

    def fetch_row(self, metrics: RequestMetrics) -> list[float]:
        # The row list lives in ``metrics`` for good, so keeping a reference is safe.
        row = self.row = metrics.latency.setdefault(self.latency, [0.0] * _ROW_SIZE)
        return row


def record(conn: Responding, ex: Exchange) -> None:
    """Once per exchange: in-flight count, metrics, access log."""
    if ex.recorded:
        return
    ex.recorded = True
    dp = conn.dp
    if ex.counted:
        unbind(dp, ex)
    plan = ex.plan
    seconds = monotonic() - ex.started
    if plan is not None:  # MetricKeys.observe(), inlined: this runs once per request
        keys = plan.metric_keys
        metrics = dp.metrics
        key = keys.requests[ex.status // 100]
        requests = metrics.requests
        requests[key] = requests.get(key, 0) + 1
        row = keys.row or keys.fetch_row(metrics)
        row[bisect_left(BUCKETS, seconds)] += 1
        row[-1] += seconds
    else:
        dp.metrics.observe("", "", ex.status, seconds)
    if dp.access_log is not None:
        _log(conn, ex, seconds)


def unbind(dp: DataPlane, ex: Exchange) -> None:
    """Take ``ex`` out of its backend's in-flight count (least_conn and random only)."""
    if ex.counted:
        ex.counted = False
        backend = ex.backend
        assert backend is not None
        inflight = dp.plans.inflight
        left = inflight.get(backend.id, 1) - 1
        if left > 0:
            inflight[backend.id] = left
        else:
            inflight.pop(backend.id, None)


def _log(conn: Responding, ex: Exchange, seconds: float) -> None:
    log = conn.dp.access_log
    assert log is not None
    plan, backend = ex.plan, ex.backend
    log.log(
        project=plan.proxy.project if plan is not None else "",
        proxy=plan.label if plan is not None else "",
        backend=f"{backend.address}:{backend.port}" if backend is not None else None,
        method=ex.head.method.decode("latin-1"),
        path=ex.head.url.decode("latin-1"),
        status=ex.status,
        bytes_in=ex.received,
        bytes_out=ex.bytes_out,
        duration_ms=round(seconds * 1000, 3),
        upstream_ms=round((ex.upstream_at - ex.started) * 1000, 3) if ex.upstream_at else None,
        client=conn.peer,
    )
