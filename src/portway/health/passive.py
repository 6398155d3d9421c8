"""Passive outlier detection: eject a backend that keeps failing real requests.

Everything that decides what counts and what ejects lives in this module; the data plane
only reports what happened (an :class:`Outcome`) and whether it had read the whole
request from the client by then.

What counts (:func:`verdict`)::

    outcome          whole request read    request not complete
    CONNECT_FAILED   failure               failure    refused, unreachable, connect timeout
    BAD_RESPONSE     failure               failure    framing llhttp cannot follow, bad 101
    NO_ANSWER        failure               -          closed or reset before a response head
    TIMED_OUT        failure               -          no response head within the timeout
    ANSWERED, 5xx    failure               -
    ANSWERED, other  success               success

``-`` counts neither way. While the client has not sent its whole request, a backend
that gives up (its own body timeout: a close, a 408, a 400, a 500 from an application
that got a broken body, a 502/504 from a proxy in front of the application) may only be
reacting to a client that stalled or closed, and any client can do that at will: a few
such requests must not take a healthy backend out for everyone.

Transitions, per (proxy id, backend id):

- a failure adds one to the count; at ``threshold`` the backend is ejected for
  ``backoff * 2 ** (strikes - 1)`` seconds, at most ``max_backoff``, where ``strikes``
  counts the ejections since its last success; the count restarts from zero;
- an ejection the bound refuses (:func:`may_eject`) leaves the count one short of the
  threshold, so the next failure asks again;
- a success clears both the count and the strikes;
- an ejected backend's failures are not counted; when its back-off ends it is a
  candidate again and needs ``threshold`` more failures to be ejected again.

The bound (:func:`may_eject`): passive ejection never takes more than
``max_percent`` of a proxy's backends (those with weight > 0) out, and never a backend
that has no other routable backend of its tier (primaries, backups) beside it, so a
proxy with one backend is never ejected, as in Envoy's ``max_ejection_percent``.

Pure: the caller passes the time in and is told when the ejected set changed, so that it
can rebuild its candidate lists only then.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

Key = tuple[str, str]  # (proxy id, backend id)


class Outcome(Enum):
    """What happened to one request on its backend, as the data plane saw it."""

    CONNECT_FAILED = "connect failed"
    BAD_RESPONSE = "invalid response"
    NO_ANSWER = "closed before answering"
    TIMED_OUT = "timed out before answering"
    ANSWERED = "answered"


class Verdict(Enum):
    FAILURE = "failure"
    SUCCESS = "success"
    NEITHER = "neither"  # not the backend's doing, for all we know


# Outcomes a client cannot bring about, whatever it sends or withholds.
_BACKEND_ONLY = frozenset({Outcome.CONNECT_FAILED, Outcome.BAD_RESPONSE})


def verdict(outcome: Outcome, *, request_sent: bool, status: int = 0) -> Verdict:
    """The rule of the module docstring's table; ``request_sent`` says whether the whole
    request had been read from the client, ``status`` is the answer's (ANSWERED only)."""
    if outcome is Outcome.ANSWERED and status < 500:
        return Verdict.SUCCESS
    if request_sent or outcome in _BACKEND_ONLY:
        return Verdict.FAILURE
    return Verdict.NEITHER


def may_eject(*, backends: int, ejected: int, others_left: int, max_percent: int) -> bool:
    """Whether one more ejection stays within the bound: ``backends`` of the proxy
    (weight > 0), ``ejected`` of them out now, ``others_left`` routable backends of the
    same tier beside the one to eject."""
    return others_left > 0 and (ejected + 1) * 100 <= backends * max_percent


def _always() -> bool:
    return True


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

    def failure(self, key: Key, now: float, room: Callable[[], bool] = _always) -> bool:
        """Count a failure; True when it ejected the backend (the ejected set changed).
        ``room`` is asked only once the threshold is reached (see :func:`may_eject`)."""
        if key in self._ejected:
            return False
        count = self._failures.get(key, 0) + 1
        if count < self._threshold:
            self._failures[key] = count
            return False
        if not room():
            self._failures[key] = self._threshold - 1
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
