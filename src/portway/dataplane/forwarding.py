"""Forwarding decisions, free of I/O: which plan serves a request, which backend, and
what a failed backend leads to.

Each function takes the snapshot, a plan or a request head and plain values, and
returns a plan, a backend, a status or a small int; the client connection acts on it.

Retries: a request whose backend could not be connected to, or closed before one byte
of an answer, goes once to another backend, provided no byte of its body has reached a
socket yet (bodies are streamed, never kept, so that is also what makes a resend
possible). A pooled connection that turns out dead is first replaced by a fresh
connection to the same backend, which does not count against the backend's health.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from portway.dataplane.picking import pick
from portway.protocol import request as req

if TYPE_CHECKING:
    from portway.dataplane.exchange import Exchange
    from portway.dataplane.plans import Plan, Plans
    from portway.dataplane.tls import Handshake
    from portway.model import Backend
    from portway.protocol.request import RequestHead
    from portway.router import Snapshot

# Statuses route() answers with instead of a plan (301: redirect to the HTTPS listener).
BAD_HOST: Final = 400
WRONG_CERTIFICATE: Final = 421
NO_ROUTE: Final = 404
TO_HTTPS: Final = 301

# Decisions of after_failure().
RECONNECT: Final = 1  # a pooled connection was dead: a fresh one to the same backend
RETRY: Final = 2  # unanswered: report the backend, then try another one once
ANSWER: Final = 3  # the backend had answered something: the error page, or a cut


def route(
    snapshot: Snapshot, plans: Plans, head: RequestHead, host: str | None, tls: Handshake | None
) -> Plan | int:
    """Host and path → the proxy's plan, or the status to answer (see the constants).
    ``host`` is the normalised Host header (None when it is not a valid host), ``tls``
    what the TLS handshake chose (None on plain HTTP)."""
    if host is None:
        return BAD_HOST
    if tls is not None and not tls.allows(host):
        return WRONG_CERTIFICATE  # another certificate's name on this TLS connection
    found = snapshot.routes.match(host, head.path)
    if found is None:
        return NO_ROUTE
    if tls is None and found.proxy.tls.redirect_http:
        return TO_HTTPS
    return plans.get(found.proxy)


def body_too_large(plan: Plan, head: RequestHead, received: int) -> bool:
    """413 before reading the body: a declared length over the limit, or more bytes than
    the limit already read (only checked when the proxy sets one)."""
    if head.framing == req.LENGTH:
        return int(head.content_length) > plan.max_body
    return received > plan.max_body


def choose(plan: Plan, head: RequestHead, peer: str) -> Backend | None:
    """The backend for a new request, or None when no candidate is left (503)."""
    if plan.plain:  # no persistence or hash key: no request header to look at
        return plan.balancer.pick(plan.live(), peer)
    return pick(plan, head, peer)


def after_failure(ex: Exchange, got_bytes: bool, reused: bool) -> int:
    """An upstream connection failed (``got_bytes``: the backend had sent something;
    ``reused``: it came from the pool): RECONNECT, RETRY or ANSWER."""
    if got_bytes or ex.response_started:
        return ANSWER
    if reused and not ex.stale_retried and not ex.body_sent:
        return RECONNECT
    return RETRY


def retry_backend(ex: Exchange, peer: str) -> Backend | None:
    """Another backend for a request whose backend failed unanswered, or None (then the
    failure is answered): once per request, and only while its body can be resent."""
    plan = ex.plan
    assert plan is not None
    if ex.retried or ex.body_sent or ex.response_started:
        return None
    return pick(plan, ex.head, peer, exclude=ex.backend)
