"""Idle upstream connections, per backend address, as pure bookkeeping.

The pool never opens or closes anything: ``acquire`` hands back an idle connection or
None (the caller connects), ``release`` returns the connection the caller must close
when it cannot be kept, and ``trim`` returns the surplus idle connections to close. Only
the event loop's thread touches it, so there are no locks. Buckets are LIFO: the most
recently used connection is the least likely to have been closed by the backend's own
idle timeout, and the bottom of the stack is what went unused longest.

The limit caps the connections that *stay* idle, not the idle count at every instant.
Closing on release whenever a bucket held ``limit`` idle connections made a load with
more concurrent requests than ``limit`` open and close a backend connection for a large
share of its requests (measured: ~4 600 connects/s at 200 clients against a limit of 64,
which more than doubled the proxy's CPU per request). So a bucket may go over the limit
while its connections are being reused, and ``trim`` (called by the data plane's sweep)
closes only connections that sat idle through a whole sweep interval, down to the limit.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar


class Poolable(Protocol):
    @property
    def usable(self) -> bool: ...


C = TypeVar("C", bound=Poolable)


class Bucket(Generic[C]):
    """The idle connections to one backend address and transport (``tls``: spoken to
    over TLS); also the key the data plane uses. A plain and a TLS route to the same
    address:port get two buckets, so neither is ever handed the other's connection.

    ``low`` is the fewest idle connections the bucket held since the last ``trim``: that
    many at the bottom of the stack were not used during the interval. Whoever pops from
    ``idle`` (``acquire``, or its inlined copy in ``client._bind``) keeps it up to date.
    """

    __slots__ = ("host", "idle", "low", "port", "refusal_logged", "tls")

    def __init__(self, host: str, port: int, tls: bool = False) -> None:
        self.host = host
        self.port = port
        self.tls = tls
        self.idle: list[C] = []
        self.low = 0
        self.refusal_logged = float("-inf")  # loop time of the last backend-policy warning


class UpstreamPool(Generic[C]):
    """Buckets keyed by (host, port, tls); they survive snapshot swaps with their idle
    connections."""

    __slots__ = ("_buckets", "_limit", "_over")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buckets: dict[tuple[str, int, bool], Bucket[C]] = {}
        self._over: set[Bucket[C]] = set()  # buckets that went over the limit: trim's work

    def bucket(self, host: str, port: int, tls: bool = False) -> Bucket[C]:
        key = (host, port, tls)
        found = self._buckets.get(key)
        if found is None:
            found = self._buckets[key] = Bucket(host, port, tls)
        return found

    @staticmethod
    def acquire(bucket: Bucket[C]) -> C | None:
        idle = bucket.idle
        while idle:
            conn = idle.pop()
            if len(idle) < bucket.low:
                bucket.low = len(idle)
            if conn.usable:  # closed-while-idle connections are dropped lazily here
                return conn
        return None

    def release(self, bucket: Bucket[C], conn: C) -> C | None:
        """Keep ``conn`` idle; returns it back if it cannot be reused (caller closes it)."""
        if not conn.usable:
            return conn
        idle = bucket.idle
        idle.append(conn)
        if len(idle) > self._limit:
            self._over.add(bucket)
        return None

    def trim(self) -> list[C]:
        """The idle connections over the limit that went unused since the last trim
        (oldest first); the caller closes them. O(buckets that went over the limit)."""
        out: list[C] = []
        limit = self._limit
        for bucket in list(self._over):
            idle = bucket.idle
            surplus = min(bucket.low, len(idle) - limit)
            if surplus > 0:
                out.extend(idle[:surplus])
                del idle[:surplus]
            bucket.low = len(idle)
            if len(idle) <= limit:
                self._over.discard(bucket)
        return out

    def drain(self) -> list[C]:
        """Forget every idle connection and return them for closing."""
        out = [c for b in self._buckets.values() for c in b.idle]
        for b in self._buckets.values():
            b.idle.clear()
            b.low = 0
        self._over.clear()
        return out
