"""Passive outlier detection: eject a backend that keeps failing real requests.

Each data plane watches its own traffic. ``threshold`` consecutive failures (a connect
failure, a connection closed before the answer, a 5xx) eject the backend for a back-off
that doubles on every ejection that follows without a success in between, up to
``max_backoff``; one success resets both counts. After the back-off the backend is a
candidate again and must fail ``threshold`` times more to be ejected again.

Pure: the caller passes the time in and is told when the ejected set changed, so that it
can rebuild its candidate lists only then.
"""

from __future__ import annotations

Key = tuple[str, str]  # (proxy id, backend id)


class OutlierDetector:
    __slots__ = ("_base", "_ejected", "_failures", "_max", "_strikes", "_threshold", "next_expiry")

    def __init__(self, *, threshold: int = 3, backoff: float = 10.0, max_backoff: float = 300.0):
        self._threshold = max(1, threshold)
        self._base = backoff
        self._max = max_backoff
        self._failures: dict[Key, int] = {}
        self._strikes: dict[Key, int] = {}  # ejections since the last success
        self._ejected: dict[Key, float] = {}  # key → time the ejection ends
        self.next_expiry = float("inf")

    def failure(self, key: Key, now: float) -> bool:
        """Count a failure; True when it ejected the backend (the ejected set changed)."""
        if key in self._ejected:
            return False
        count = self._failures.get(key, 0) + 1
        if count < self._threshold:
            self._failures[key] = count
            return False
        self._failures.pop(key, None)
        strikes = self._strikes.get(key, 0) + 1
        self._strikes[key] = strikes
        until = now + min(self._max, self._base * 2 ** (strikes - 1))
        self._ejected[key] = until
        self.next_expiry = min(self.next_expiry, until)
        return True

    @property
    def watching(self) -> bool:
        """Whether any backend has failures or strikes to forget on success; callers test
        this first so that a healthy fleet pays no key tuple per response."""
        return bool(self._failures or self._strikes)

    def success(self, key: Key) -> None:
        self._failures.pop(key, None)
        self._strikes.pop(key, None)

    def expire(self, now: float) -> bool:
        """Let back-offs that ended return; True when the ejected set changed."""
        if now < self.next_expiry:
            return False
        ended = [k for k, until in self._ejected.items() if until <= now]
        for key in ended:
            del self._ejected[key]
        self.next_expiry = min(self._ejected.values(), default=float("inf"))
        return bool(ended)

    def is_ejected(self, key: Key) -> bool:
        return key in self._ejected

    def ejected(self) -> frozenset[Key]:
        return frozenset(self._ejected)
