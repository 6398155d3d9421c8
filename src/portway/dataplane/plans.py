"""Per-proxy routing state: candidates, balancer, stickiness, timeouts, all kept per proxy.

A plan is derived from a Proxy object lazily, the first time a request needs it, so
``DataPlane.apply`` stays one assignment however large the table. Balancer state is kept
per (proxy id, algorithm) and session-persistence state per (proxy id, persistence
config), so both survive snapshot swaps that keep them.

Health enters through one generation counter: ``Plans.gen`` moves whenever the set of
down or ejected backends changes, and a plan recomputes its candidates only when its own
copy of the counter is stale, so a request pays one integer comparison for health.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Container
from typing import TYPE_CHECKING, Final

from portway.balance import Balancer, Stickiness, make_balancer
from portway.dataplane.settings import DataPlaneSettings
from portway.health.passive import Key, OutlierDetector
from portway.model import Backend, Proxy, SessionPersistence
from portway.observability.metrics import BUCKETS, RequestMetrics

if TYPE_CHECKING:
    from portway.dataplane.pool import Bucket, UpstreamPool
    from portway.dataplane.upstream import UpstreamConnection

NO_LIMIT = 1 << 62
# Algorithms that read the in-flight counts; for the others nobody keeps them.
_LOAD_AWARE = frozenset({"least_conn", "random"})
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


class Plan:
    """What a request to ``proxy`` needs, precomputed once per proxy object."""

    __slots__ = (
        "_gen",
        "_plans",
        "balancer",
        "buckets",
        "candidates",
        "connect",
        "counts_load",
        "first_byte",
        "hash_cookie",
        "hash_header",
        "idle",
        "label",
        "max_body",
        "metric_keys",
        "plain",
        "proxy",
        "sticky",
        "total",
        "websocket_idle",
    )

    def __init__(
        self,
        proxy: Proxy,
        plans: Plans,
        balancer: Balancer,
        sticky: Stickiness | None,
    ) -> None:
        self.proxy = proxy
        self._plans = plans
        self.balancer = balancer
        self.sticky = sticky
        self.counts_load = proxy.algorithm in _LOAD_AWARE
        self.label = f"{proxy.hostname}{proxy.path_prefix}"
        self.metric_keys = MetricKeys(proxy.project, self.label)
        # Keyed by backend id: the balancer returns a Backend, the pool wants its bucket.
        pool = plans.pool
        self.buckets: dict[str, Bucket[UpstreamConnection]] = {
            b.id: pool.bucket(b.address, b.port) for b in proxy.backends
        }
        self.hash_header, self.hash_cookie = _hash_key(proxy)
        # No persistence and no hash key: pick() needs no request header at all.
        self.plain = sticky is None and self.hash_header is None and self.hash_cookie is None
        self._set_timeouts(proxy, plans.settings)
        limit = proxy.limits.max_body_bytes
        self.max_body = NO_LIMIT if limit is None else limit
        self._gen = -1
        self.candidates: tuple[Backend, ...] = ()

    def _set_timeouts(self, proxy: Proxy, settings: DataPlaneSettings) -> None:
        # The node's settings are ceilings: an operator can bound what tenants configure.
        t = proxy.timeouts
        self.connect = min(t.connect, settings.connect_timeout)
        self.first_byte = min(t.first_byte, settings.read_timeout)
        self.idle = min(t.idle, settings.read_timeout)
        self.total = t.total
        self.websocket_idle = t.websocket_idle

    def live(self) -> tuple[Backend, ...]:
        """The candidates right now (recomputed only after a health change)."""
        plans = self._plans
        if self._gen != plans.gen:
            self._gen = plans.gen
            self.candidates = usable_backends(self.proxy, plans.is_down)
        return self.candidates


def usable_backends(
    proxy: Proxy, is_down: Callable[[Key], bool] | None = None
) -> tuple[Backend, ...]:
    """Primaries with weight > 0 that are not down; the backups only when none is left."""
    pid = proxy.id
    live = tuple(
        b for b in proxy.backends if b.weight > 0 and (is_down is None or not is_down((pid, b.id)))
    )
    primaries = tuple(b for b in live if not b.backup)
    return primaries or live


def _hash_key(proxy: Proxy) -> tuple[bytes | None, str | None]:
    key = proxy.hash_key if proxy.algorithm == "consistent_hash" else None
    if key is None:
        return None, None
    kind, _, name = key.partition(":")
    if kind == "header" and name:
        return name.lower().encode("latin-1"), None
    if kind == "cookie" and name:
        return None, name
    return None, None


class Plans:
    """Plan cache, balancer and stickiness states, and the health view of one data plane."""

    __slots__ = (
        "_balancers",
        "_plans",
        "_sticky",
        "down",
        "gen",
        "inflight",
        "outliers",
        "pool",
        "settings",
    )

    def __init__(self, pool: UpstreamPool[UpstreamConnection], settings: DataPlaneSettings) -> None:
        self.pool = pool
        self.settings = settings
        self._plans: dict[str, Plan] = {}
        self._balancers: dict[str, tuple[str, Balancer]] = {}
        self._sticky: dict[str, tuple[SessionPersistence, Stickiness]] = {}
        self.inflight: dict[str, int] = {}  # backend id → requests in flight (live view)
        self.down: frozenset[Key] = frozenset()
        self.outliers = OutlierDetector(
            threshold=settings.passive_failures,
            backoff=settings.passive_backoff,
            max_backoff=settings.passive_max_backoff,
        )
        self.gen = 0

    def get(self, proxy: Proxy) -> Plan:
        plan = self._plans.get(proxy.id)
        if plan is not None and plan.proxy is proxy:  # identity: same snapshot object
            return plan
        kept = self._balancers.get(proxy.id)
        if kept is None or kept[0] != proxy.algorithm:
            balancer = make_balancer(proxy.algorithm, inflight=self.inflight)
            kept = self._balancers[proxy.id] = (proxy.algorithm, balancer)
        plan = self._plans[proxy.id] = Plan(proxy, self, kept[1], self._stickiness(proxy))
        return plan

    def _stickiness(self, proxy: Proxy) -> Stickiness | None:
        config = proxy.session_persistence
        if config is None:  # no object at all: persistence costs nothing when unused
            self._sticky.pop(proxy.id, None)
            return None
        kept = self._sticky.get(proxy.id)
        if kept is None or kept[0] != config:
            kept = self._sticky[proxy.id] = (config, Stickiness(config))
        return kept[1]

    def prune(self, live_ids: Container[str]) -> None:
        """Forget proxies that left the table (called on apply, off the hot path)."""
        for table in (self._plans, self._balancers, self._sticky):
            for proxy_id in [k for k in table if k not in live_ids]:
                del table[proxy_id]

    # -- health ------------------------------------------------------------

    def is_down(self, key: Key) -> bool:
        return key in self.down or self.outliers.is_ejected(key)

    def set_down(self, down: frozenset[Key]) -> None:
        if down != self.down:
            self.down = down
            self.gen += 1

    def failure(self, key: Key, now: float) -> None:
        if self.outliers.failure(key, now):
            self.gen += 1

    def expire(self, now: float) -> None:
        if self.outliers.expire(now):
            self.gen += 1
