"""Per-proxy routing state: the balancer (kept across swaps) and the candidate list.

A plan is derived from a Proxy object lazily, the first time a request needs it, so
``DataPlane.apply`` stays one assignment however large the table. Balancer state is kept
per proxy id and survives a swap when the algorithm did not change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portway.balance import Balancer, make_balancer
from portway.model import Backend, Proxy

if TYPE_CHECKING:
    from portway.dataplane.pool import Bucket, UpstreamPool
    from portway.dataplane.upstream import UpstreamConnection


class Plan:
    """What a request to ``proxy`` needs: candidates, balancer, and a pool bucket each."""

    __slots__ = ("balancer", "buckets", "candidates", "proxy")

    def __init__(
        self, proxy: Proxy, balancer: Balancer, pool: UpstreamPool[UpstreamConnection]
    ) -> None:
        self.proxy = proxy
        self.balancer = balancer
        self.candidates = usable_backends(proxy.backends)
        # Keyed by backend id: the balancer returns a Backend, the pool wants its bucket.
        self.buckets: dict[str, Bucket[UpstreamConnection]] = {
            b.id: pool.bucket(b.address, b.port) for b in self.candidates
        }


def usable_backends(backends: tuple[Backend, ...]) -> tuple[Backend, ...]:
    """Primaries with weight > 0; the backups only when no primary is usable."""
    live = tuple(b for b in backends if b.weight > 0)
    primaries = tuple(b for b in live if not b.backup)
    return primaries or live


class Plans:
    """Plan cache and balancer states of one data plane."""

    __slots__ = ("_balancers", "_plans", "_pool")

    def __init__(self, pool: UpstreamPool[UpstreamConnection]) -> None:
        self._pool = pool
        self._plans: dict[str, Plan] = {}
        self._balancers: dict[str, tuple[str, Balancer]] = {}

    def get(self, proxy: Proxy) -> Plan:
        plan = self._plans.get(proxy.id)
        if plan is not None and plan.proxy is proxy:  # identity: same snapshot object
            return plan
        kept = self._balancers.get(proxy.id)
        if kept is None or kept[0] != proxy.algorithm:
            kept = self._balancers[proxy.id] = (proxy.algorithm, make_balancer(proxy.algorithm))
        plan = self._plans[proxy.id] = Plan(proxy, kept[1], self._pool)
        return plan

    def prune(self, live_ids: set[str]) -> None:
        """Forget proxies that left the table (called on apply, off the hot path)."""
        for table in (self._plans, self._balancers):
            for proxy_id in [k for k in table if k not in live_ids]:
                del table[proxy_id]
