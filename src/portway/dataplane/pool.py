"""Idle upstream connections, per backend address, as pure bookkeeping.

The pool never opens or closes anything: ``acquire`` hands back an idle connection or
None (the caller connects), ``release`` returns the connection the caller must close
when the bucket is full. Only the event loop's thread touches it, so there are no locks.
Buckets are LIFO: the most recently used connection is the least likely to have been
closed by the backend's own idle timeout.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar


class Poolable(Protocol):
    @property
    def usable(self) -> bool: ...


C = TypeVar("C", bound=Poolable)


class Bucket(Generic[C]):
    """The idle connections to one backend address; also the key the data plane uses."""

    __slots__ = ("host", "idle", "port")

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.idle: list[C] = []


class UpstreamPool(Generic[C]):
    """Buckets keyed by (host, port); they survive snapshot swaps with their idle conns."""

    __slots__ = ("_buckets", "_limit")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._buckets: dict[tuple[str, int], Bucket[C]] = {}

    def bucket(self, host: str, port: int) -> Bucket[C]:
        key = (host, port)
        found = self._buckets.get(key)
        if found is None:
            found = self._buckets[key] = Bucket(host, port)
        return found

    @staticmethod
    def acquire(bucket: Bucket[C]) -> C | None:
        idle = bucket.idle
        while idle:
            conn = idle.pop()
            if conn.usable:  # closed-while-idle connections are dropped lazily here
                return conn
        return None

    def release(self, bucket: Bucket[C], conn: C) -> C | None:
        """Keep ``conn`` idle; returns it back if the bucket is full (caller closes it)."""
        if len(bucket.idle) >= self._limit or not conn.usable:
            return conn
        bucket.idle.append(conn)
        return None

    def drain(self) -> list[C]:
        """Forget every idle connection and return them for closing."""
        out = [c for b in self._buckets.values() for c in b.idle]
        for b in self._buckets.values():
            b.idle.clear()
        return out
