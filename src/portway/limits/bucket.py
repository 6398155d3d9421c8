"""A token bucket per client address, as nginx's ``limit_req``: ``rate`` requests a
second with ``burst`` at once, kept in bounded memory.

Each client costs one float, its theoretical arrival time (GCRA, the generic cell rate
algorithm, which is a token bucket written as one number): a request at ``now`` passes
while ``tat - now`` stays within ``(burst - 1) / rate``, and moves ``tat`` on by
``1 / rate``. A client whose ``tat`` has passed has a full bucket, the same as a client
never seen, so its entry can go without changing any answer.

Memory. Entries live in a dict in the order of their last request (dicts keep insertion
order; a request re-inserts its key). Each request drops up to two entries at the front
that are full again, so idle clients leave as fast as new ones come; and the table never
holds more than ``max_clients``: past that, the least recently seen entry goes (as
nginx's zone does when full). An attacker rotating addresses then costs at most
``max_clients`` floats, and can only make Portway forget buckets, never refuse others.

Invariant: ``take`` decides from ``now`` and the table alone; the caller's clock is
monotonic (the data plane passes ``time.monotonic()``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_MAX_CLIENTS = 100_000
# A token due exactly now passes: sums of intervals carry float rounding (0.1 * 3).
_EPSILON = 1e-9  # ~10 MiB per limited proxy per worker, at most


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_second`` requests a second, ``burst`` of them back to back (at least 1)."""

    per_second: float
    burst: int

    @classmethod
    def of(cls, per_second: float, burst: int | None) -> Rate:
        """``burst`` None: one second's worth (nginx's burst is extra; ours is the total)."""
        return cls(per_second, max(1, math.ceil(per_second) if burst is None else burst))

    @classmethod
    def for_proxy(
        cls, rate: float | None, burst: int | None, node_rate: float, node_burst: int
    ) -> Rate | None:
        """A proxy's rate: its own (``limits.rate``/``burst``), else the node's
        (``--rate-limit``, 0: none; ``--rate-burst``, 0: one second's worth), else None."""
        if rate is not None:
            return cls.of(rate, burst)
        if node_rate > 0:
            return cls.of(node_rate, node_burst or None)
        return None

    def share(self, parts: int) -> Rate:
        """One of ``parts`` equal shares (a worker's, when ``parts`` workers serve)."""
        if parts <= 1:
            return self
        return Rate(self.per_second / parts, max(1, math.ceil(self.burst / parts)))


class Buckets:
    """The buckets of one rate: ``take(client, now)`` says whether a request passes."""

    __slots__ = ("_interval", "_slack", "_tat", "max_clients", "rate")

    def __init__(self, rate: Rate, *, max_clients: int = DEFAULT_MAX_CLIENTS) -> None:
        self.rate = rate
        self.max_clients = max(1, max_clients)
        self._interval = 1.0 / rate.per_second
        self._slack = (rate.burst - 1) * self._interval
        self._tat: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._tat)

    def take(self, client: str, now: float) -> float:
        """0.0 when the request passes (and is counted), else the seconds until it
        would: the Retry-After of its 429 (rounded up by the caller)."""
        table = self._tat
        tat = table.pop(client, now)
        if tat < now:
            tat = now
        wait = tat - now - self._slack
        if wait > _EPSILON:
            table[client] = tat  # re-inserted: a refused client is recently seen too
            return wait
        table[client] = tat + self._interval
        self._trim(now)
        return 0.0

    def _trim(self, now: float) -> None:
        table = self._tat
        for _ in range(2):
            oldest = next(iter(table))
            if table[oldest] > now:
                break
            del table[oldest]  # full again: forgetting it changes no answer
        while len(table) > self.max_clients:
            del table[next(iter(table))]
