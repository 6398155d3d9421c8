"""Hash-based balancing: consistent hashing on a request key, and source-IP affinity.

The ring places each backend at ``VNODES * weight`` points hashed from its stable id, so
removing one backend moves only the keys that were on it, and a snapshot swap that keeps
the same backends keeps every key where it was. The ring is cached per candidate set.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence

from portway.model import Backend

VNODES = 100


def _point(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class _Ring:
    __slots__ = ("_backends", "_points")

    def __init__(self, candidates: Sequence[Backend]) -> None:
        pairs = sorted(
            (_point(f"{b.id}#{v}"), i)
            for i, b in enumerate(candidates)
            for v in range(VNODES * max(b.weight, 1))
        )
        self._points = [p for p, _ in pairs]
        self._backends = [candidates[i] for _, i in pairs]

    def lookup(self, key: str) -> Backend:
        index = bisect.bisect(self._points, _point(key)) % len(self._points)
        return self._backends[index]


class ConsistentHash:
    """Same key, same backend, for as long as that backend stays a candidate."""

    __slots__ = ("_ids", "_ring")

    def __init__(self) -> None:
        self._ids: tuple[str, ...] = ()
        self._ring: _Ring | None = None

    def pick(self, candidates: Sequence[Backend], client: str, key: str = "") -> Backend | None:
        if not candidates:
            return None
        ids = tuple(b.id for b in candidates)
        if ids != self._ids or self._ring is None:
            self._ids, self._ring = ids, _Ring(candidates)
        return self._ring.lookup(key or client)


class SourceIp(ConsistentHash):
    """Consistent hashing on the client address alone."""

    __slots__ = ()

    def pick(self, candidates: Sequence[Backend], client: str, key: str = "") -> Backend | None:
        return super().pick(candidates, client, client)
