"""Per-proxy routing state: candidates, balancer, stickiness, timeouts, all kept per proxy.

A plan is derived from a Proxy object lazily, the first time a request needs it, so
``DataPlane.apply`` stays one assignment however large the table. Balancer state is kept
per (proxy id, algorithm) and session-persistence state per (proxy id, persistence
config), so both survive snapshot swaps that keep them.

Health enters through one generation counter: ``Plans.gen`` moves whenever the set of
down or ejected backends changes, and a plan recomputes its candidates only when its own
copy of the counter is stale, so a request pays one integer comparison for health.
What the data plane's traffic says about a backend enters through :meth:`Plans.report`;
which outcomes count and when a backend may be ejected is decided in
``portway.health.passive``.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from functools import partial
from typing import TYPE_CHECKING, Final

from portway.balance import Balancer, Stickiness, make_balancer
from portway.cache.store import CacheCounters, ProjectCache, ProxyCache
from portway.dataplane.caching import PlanCache
from portway.dataplane.guard import ClientGuard
from portway.dataplane.settings import DataPlaneSettings
from portway.health.passive import Key, Outcome, OutlierDetector, Verdict, may_eject, verdict
from portway.limits.bucket import Buckets, Rate
from portway.limits.ranges import Ranges
from portway.model import Backend, CacheSettings, Proxy, SessionPersistence
from portway.model.quota import CacheLimits
from portway.observability.metrics import BUCKETS, RequestMetrics
from portway.router.rewrite import path_rewrite

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
        "cache",
        "candidates",
        "connect",
        "counts_load",
        "first_byte",
        "forward_for",
        "guard",
        "hash_cookie",
        "hash_header",
        "idle",
        "label",
        "max_body",
        "metric_keys",
        "plain",
        "proxy",
        "rewrite",
        "sticky",
        "tool",
        "total",
        "websocket_idle",
    )

    def __init__(
        self,
        proxy: Proxy,
        plans: Plans,
        balancer: Balancer,
        sticky: Stickiness | None,
        cache: PlanCache | None = None,
    ) -> None:
        self.proxy = proxy
        self.cache = cache  # None unless cache.enabled: one test per request
        self._plans = plans
        self.balancer = balancer
        self.sticky = sticky
        self.counts_load = proxy.algorithm in _LOAD_AWARE
        # A proxy on a port of its own is labelled with it (metrics, access log).
        port = "" if proxy.listen_port is None else f":{proxy.listen_port}"
        self.label = f"{proxy.hostname}{port}{proxy.path_prefix}"
        self.tool = proxy.toolforge is not None  # adds X-Original-URI (compat.md §2)
        self.rewrite = path_rewrite(proxy)  # None for almost every proxy: one test per request
        self.metric_keys = MetricKeys(proxy.project, self.label)
        # Keyed by backend id: the balancer returns a Backend, the pool wants its bucket.
        pool = plans.pool
        self.buckets: dict[str, Bucket[UpstreamConnection]] = {
            b.id: pool.bucket(b.address, b.port, b.tls) for b in proxy.backends
        }
        self.hash_header, self.hash_cookie = _hash_key(proxy)
        # No persistence and no hash key: pick() needs no request header at all.
        self.plain = sticky is None and self.hash_header is None and self.hash_cookie is None
        self._set_timeouts(proxy, plans.settings)
        # Decided once per plan (a SIGHUP rebuilds the plans), never per request.
        self.forward_for = proxy.privacy.sends_client_address(plans.settings.forwarded_for)
        limit = proxy.limits.max_body_bytes
        self.max_body = NO_LIMIT if limit is None else limit
        self.guard = plans.guard(proxy)  # None: no limit to check, nothing to pay
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
            down, ejected = plans.down.__contains__, plans.outliers.is_ejected
            self.candidates = usable_backends(self.proxy, down, ejected)
        return self.candidates

    def live_without(self, failed: Backend) -> tuple[Backend, ...]:
        """The candidates for a retry after ``failed`` did not answer: the others, and
        the backups when ``failed`` was the last primary (as if it were down)."""
        plans, key = self._plans, (self.proxy.id, failed.id)

        def down(k: Key) -> bool:
            return k == key or k in plans.down

        return usable_backends(self.proxy, down, plans.outliers.is_ejected)


def usable_backends(
    proxy: Proxy,
    is_down: Callable[[Key], bool] | None = None,
    is_ejected: Callable[[Key], bool] | None = None,
) -> tuple[Backend, ...]:
    """Primaries with weight > 0 that are neither down nor ejected; the backups only when
    none is left. Passive ejections give way when they would leave no candidate at all:
    an ejection is decided while other backends are up (see ``may_eject``), and the active
    checks may take those down later."""
    found = _usable(proxy, is_down, is_ejected)
    if not found and is_ejected is not None:
        found = _usable(proxy, is_down, None)
    return found


def _usable(
    proxy: Proxy, is_down: Callable[[Key], bool] | None, is_ejected: Callable[[Key], bool] | None
) -> tuple[Backend, ...]:
    pid = proxy.id
    live = tuple(
        b
        for b in proxy.backends
        if b.weight > 0
        and (is_down is None or not is_down((pid, b.id)))
        and (is_ejected is None or not is_ejected((pid, b.id)))
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
        "_buckets",
        "_cache_limits",
        "_caches",
        "_node_deny",
        "_plans",
        "_projects",
        "_sticky",
        "cache_counters",
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
        self._buckets: dict[str, Buckets] = {}  # proxy id → its clients' buckets
        self._node_deny = Ranges(settings.deny_clients)
        # A proxy's stored responses survive swaps that keep its cache settings.
        self._caches: dict[str, tuple[CacheSettings, ProxyCache]] = {}
        # Each project's caches together, bound by its cache_bytes quota (cache/store.py).
        self._projects: dict[str, ProjectCache] = {}
        self._cache_limits = CacheLimits()
        self.cache_counters: dict[str, CacheCounters] = {}  # by project (metrics)
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
        plan = self._plans[proxy.id] = Plan(
            proxy, self, kept[1], self._stickiness(proxy), self._cache(proxy)
        )
        return plan

    def _cache(self, proxy: Proxy) -> PlanCache | None:
        settings = proxy.cache
        if not settings.enabled:
            gone = self._caches.pop(proxy.id, None)
            if gone is not None:
                gone[1].close()  # its bytes leave the project's stored_bytes
            return None
        kept = self._caches.get(proxy.id)
        if kept is None or kept[0] != settings:
            if kept is not None:
                kept[1].close()
            counters = self.cache_counters.setdefault(proxy.project, CacheCounters())
            cache = ProxyCache(settings.max_bytes, counters, self._project_cache(proxy.project))
            kept = self._caches[proxy.id] = (settings, cache)
        return PlanCache(settings, proxy.purge, kept[1])

    def _project_cache(self, project: str) -> ProjectCache:
        found = self._projects.get(project)
        if found is None:
            found = self._projects[project] = ProjectCache(self._cache_limits.of(project))
        return found

    def set_cache_limits(self, limits: CacheLimits) -> None:
        """The snapshot's cache quotas: each project's caches are trimmed to a lowered
        one at once (off the hot path: on apply, and only when they changed)."""
        if limits is self._cache_limits or limits == self._cache_limits:
            return
        self._cache_limits = limits
        for name, project in self._projects.items():
            project.set_limit(limits.of(name))

    def caches(self) -> dict[str, ProxyCache]:
        """Every caching proxy's store, by proxy id (purges go through these)."""
        return {pid: kept[1] for pid, kept in self._caches.items()}

    def _stickiness(self, proxy: Proxy) -> Stickiness | None:
        config = proxy.session_persistence
        if config is None:  # no object at all: persistence costs nothing when unused
            self._sticky.pop(proxy.id, None)
            return None
        kept = self._sticky.get(proxy.id)
        if kept is None or kept[0] != config:
            kept = self._sticky[proxy.id] = (config, Stickiness(config))
        return kept[1]

    def guard(self, proxy: Proxy) -> ClientGuard | None:
        """The client limits of ``proxy`` (its own, else the node's), None when it has
        none; its buckets are kept while its rate stays the same."""
        limits, settings = proxy.limits, self.settings
        rate = Rate.for_proxy(limits.rate, limits.burst, settings.rate_limit, settings.rate_burst)
        if rate is not None:
            rate = rate.share(settings.rate_share)
        buckets = None
        if rate is not None:
            buckets = self._buckets.get(proxy.id)
            if buckets is None or buckets.rate != rate:
                clients = settings.rate_limit_clients
                buckets = self._buckets[proxy.id] = Buckets(rate, max_clients=clients)
        else:
            self._buckets.pop(proxy.id, None)
        deny = Ranges(limits.deny)
        if buckets is None and not deny and not self._node_deny:
            return None
        return ClientGuard(deny, self._node_deny, buckets)

    def retime(self, settings: DataPlaneSettings) -> None:
        """New node-wide timeout ceilings and client limits: plans are rebuilt lazily, and
        the balancer, persistence and bucket states they share survive."""
        self.settings = settings
        self._node_deny = Ranges(settings.deny_clients)
        self._plans.clear()

    def prune(self, live_ids: Container[str]) -> None:
        """Forget proxies that left the table (called on apply, off the hot path)."""
        for table in (self._plans, self._balancers, self._sticky, self._buckets):
            for proxy_id in [k for k in table if k not in live_ids]:
                del table[proxy_id]
        for proxy_id in [k for k in self._caches if k not in live_ids]:
            self._caches.pop(proxy_id)[1].close()
        for name in [n for n, p in self._projects.items() if not p.members]:
            del self._projects[name]

    # -- health ------------------------------------------------------------

    def set_down(self, down: frozenset[Key]) -> None:
        if down != self.down:
            self.down = down
            self.gen += 1

    def report(
        self,
        plan: Plan,
        backend: Backend,
        outcome: Outcome,
        now: float,
        *,
        request_sent: bool,
        status: int = 0,
    ) -> None:
        """What happened to one exchange on ``backend``, for the outlier detector to
        judge; ``request_sent``: the whole request had gone out."""
        key = (plan.proxy.id, backend.id)
        judged = verdict(outcome, request_sent=request_sent, status=status)
        if judged is Verdict.SUCCESS:
            self.outliers.success(key)
        elif judged is Verdict.FAILURE and self.outliers.failure(
            key, now, partial(self._room, plan.proxy, backend)
        ):
            self.gen += 1  # the ejected set changed: plans recompute their candidates

    def _room(self, proxy: Proxy, backend: Backend) -> bool:
        """Whether ejecting ``backend`` keeps ``proxy`` within the bound (``may_eject``)."""
        total = ejected = others = 0
        outliers, pid = self.outliers, proxy.id
        for b in proxy.backends:
            if b.weight <= 0:
                continue
            total += 1
            key = (pid, b.id)
            if outliers.is_ejected(key):
                ejected += 1
            elif b.id != backend.id and b.backup == backend.backup and key not in self.down:
                others += 1
        return may_eject(
            backends=total,
            ejected=ejected,
            others_left=others,
            max_percent=self.settings.passive_max_ejection_percent,
        )

    def expire(self, now: float) -> None:
        if self.outliers.expire(now):
            self.gen += 1
