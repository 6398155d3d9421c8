"""Least connections: the candidate with the fewest requests in flight, weighted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from portway.model import Backend


class LeastConn:
    """Ties go round robin, so that an idle pool still spreads its first requests."""

    __slots__ = ("_inflight", "_next")

    def __init__(self, inflight: Mapping[str, int]) -> None:
        self._inflight = inflight
        self._next = 0

    def pick(self, candidates: Sequence[Backend], client: str, key: str = "") -> Backend | None:
        n = len(candidates)
        if n == 0:
            return None
        start = self._next % n
        self._next = start + 1
        inflight = self._inflight
        best: Backend | None = None
        best_load = 0.0
        for i in range(n):
            backend = candidates[(start + i) % n]
            # Compare in-flight per unit of weight: weight 2 takes twice the load.
            load = (inflight.get(backend.id, 0) + 1) / max(backend.weight, 1)
            if best is None or load < best_load:
                best, best_load = backend, load
        return best
