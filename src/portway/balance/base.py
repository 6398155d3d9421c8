"""The Balancer plug point and its factory."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Protocol

from portway.errors import ValidationError
from portway.model import Backend

NO_LOAD: Mapping[str, int] = {}


class Balancer(Protocol):
    """Picks one backend for a request.

    ``candidates`` are the backends usable right now (healthy, not draining), in a stable
    order; ``client`` is the client address and ``key`` the hash key of the request (a
    header or cookie value) for ``consistent_hash``. A balancer keeps whatever state it
    needs between calls, keyed by backend id, and tolerates the candidates changing.
    """

    def pick(self, candidates: Sequence[Backend], client: str, key: str = "") -> Backend | None:
        """The backend for this request, or None when ``candidates`` is empty."""
        ...


def make_balancer(
    algorithm: str,
    *,
    rng: random.Random | None = None,
    inflight: Mapping[str, int] = NO_LOAD,
) -> Balancer:
    """A fresh balancer. ``inflight`` is a live view of requests in flight per backend id,
    kept by the data plane; ``rng`` is injected so that tests are deterministic."""
    from portway.balance.hashing import ConsistentHash, SourceIp
    from portway.balance.least_conn import LeastConn
    from portway.balance.random_two import PowerOfTwo
    from portway.balance.round_robin import RoundRobin
    from portway.balance.weighted import SmoothWeighted

    if algorithm == "round_robin":
        return RoundRobin()
    if algorithm == "weighted_round_robin":
        return SmoothWeighted()
    if algorithm == "least_conn":
        return LeastConn(inflight)
    if algorithm == "random":
        # Seeding a Random reads the OS entropy pool: only the algorithm that draws pays it.
        return PowerOfTwo(inflight, rng or random.Random())
    if algorithm == "source_ip":
        return SourceIp()
    if algorithm == "consistent_hash":
        return ConsistentHash()
    raise ValidationError(f"unknown algorithm {algorithm!r}", field="algorithm")
