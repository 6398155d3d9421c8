"""Random with two choices: draw two candidates, keep the less loaded one.

Plain random piles up queues by chance; the second draw removes most of that at the cost
of one more look-up (Mitzenmacher, "The power of two choices").
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from portway.model import Backend


class PowerOfTwo:
    __slots__ = ("_inflight", "_rng")

    def __init__(self, inflight: Mapping[str, int], rng: random.Random) -> None:
        self._inflight = inflight
        self._rng = rng

    def pick(self, candidates: Sequence[Backend], client: str, key: str = "") -> Backend | None:
        n = len(candidates)
        if n == 0:
            return None
        if n == 1:
            return candidates[0]
        i = self._rng.randrange(n)
        j = self._rng.randrange(n - 1)
        if j >= i:  # a distinct second index without rejection sampling
            j += 1
        a, b = candidates[i], candidates[j]
        inflight = self._inflight
        load_a = inflight.get(a.id, 0) / max(a.weight, 1)
        load_b = inflight.get(b.id, 0) / max(b.weight, 1)
        return b if load_b < load_a else a
