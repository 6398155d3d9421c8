"""The end of every exchange: in-flight count, request metrics, access log.

Recording runs once per request, so it writes straight into the ``RequestMetrics``
dicts with keys built once per proxy (:class:`~portway.dataplane.plans.MetricKeys`,
kept on the plan) instead of building two tuples and a clamped status class per
request. The row layout is the one ``RequestMetrics.observe`` keeps (bucket counts,
+Inf, sum), taken from the same ``BUCKETS``, and ``export`` sees no difference.
"""

from __future__ import annotations

from bisect import bisect_left
from time import monotonic
from typing import TYPE_CHECKING

from portway.observability.metrics import BUCKETS

if TYPE_CHECKING:
    from portway.dataplane.exchange import Exchange
    from portway.dataplane.shared import Shared
    from portway.protocol.forwarded import ForwardedContext


def record(dp: Shared, ex: Exchange, peer: str, fwd: ForwardedContext | None) -> None:
    """Once per exchange: in-flight count, metrics, access log (``peer``: the connection's
    peer; ``fwd``: its forwarding context, which knows the client behind a trusted proxy)."""
    if ex.recorded:
        return
    ex.recorded = True
    if ex.counted:
        unbind(dp, ex)
    flow = ex.cache
    if flow is not None:  # the one end of every exchange: commit or abandon its fill
        for waiter in flow.end():
            waiter()
    plan = ex.plan
    seconds = monotonic() - ex.started
    if plan is not None:  # per-proxy keys built once (MetricKeys): this runs per request
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
        _log(dp, ex, seconds, peer, fwd)


def unbind(dp: Shared, ex: Exchange) -> None:
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


def _log(dp: Shared, ex: Exchange, seconds: float, peer: str, fwd: ForwardedContext | None) -> None:
    log = dp.access_log
    assert log is not None
    plan, backend = ex.plan, ex.backend
    # The client Portway trusts (as the limits and X-Forwarded-For see it), as nginx's
    # realip module makes $remote_addr; the peer too when it is another (the proxy).
    client = peer if fwd is None else fwd.client(ex.head.xff)
    extra = {} if client == peer else {"peer": peer}
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
        client=client,
        **extra,
    )
