"""What a proxy's limits decide for one request: pass, 403 (a banned range) or 429.

A ``ClientGuard`` is built once per plan, and only for a proxy with something to check
(its own or the node's rate, banned ranges): every other proxy's plan holds None and its
requests pay one ``is None`` test. The buckets live in ``Plans``, keyed by proxy id, so a
snapshot swap that keeps a proxy's rate keeps its clients' buckets.

State is per worker: with ``--workers N`` each worker counts the clients it serves and
applies one N-th of the rate (``DataPlaneSettings.rate_share``), so a client whose
connections reach every worker gets the rate in total, and one whose connections land
on a single worker gets less, never more (docs/limits.md).
"""

from __future__ import annotations

from portway.limits.bucket import Buckets
from portway.limits.ranges import Ranges

PASS = 0.0
DENIED = -1.0


class ClientGuard:
    """The banned ranges and the buckets of one proxy."""

    __slots__ = ("buckets", "deny", "node_deny")

    def __init__(self, deny: Ranges, node_deny: Ranges, buckets: Buckets | None) -> None:
        self.deny = deny
        self.node_deny = node_deny
        self.buckets = buckets

    def decide(self, client: str, now: float) -> float:
        """PASS, DENIED, or the seconds a rate-limited client should wait."""
        if (self.node_deny and client in self.node_deny) or (self.deny and client in self.deny):
            return DENIED
        buckets = self.buckets
        return PASS if buckets is None else buckets.take(client, now)
