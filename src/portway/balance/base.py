"""The Balancer plug point."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from portway.errors import ValidationError
from portway.model import Backend


class Balancer(Protocol):
    """Picks one backend for a request.

    ``candidates`` are the backends usable right now (enabled, healthy, not draining),
    in a stable order; ``client`` is the client address. A balancer keeps whatever state
    it needs between calls and must tolerate the candidate list changing between calls.
    """

    def pick(self, candidates: Sequence[Backend], client: str) -> Backend | None: ...


def make_balancer(algorithm: str) -> Balancer:
    """A fresh balancer for ``algorithm``."""
    from portway.balance.round_robin import RoundRobin

    if algorithm == "round_robin":
        return RoundRobin()
    raise ValidationError(f"algorithm {algorithm!r} is not supported yet", field="algorithm")
