"""Choosing a backend for a request, and the session-persistence cookie of its answer.

The request headers are only searched when the proxy asks for it (session persistence or
a header/cookie hash key): a proxy without either pays one attribute test per request.
"""

from __future__ import annotations

from portway.balance import Stickiness
from portway.balance.persistence import cookie_value
from portway.dataplane.plans import Plan
from portway.model import Backend
from portway.protocol.request import RequestHead
from portway.protocol.response import ResponseHead


def _cookies(head: RequestHead) -> str:
    value = head.header(b"cookie")
    return value.decode("latin-1") if value else ""


def pick(
    plan: Plan, head: RequestHead, client: str, exclude: Backend | None = None
) -> Backend | None:
    """The backend for this request, or None when no candidate is left."""
    # A retry: any backend but the one that just failed, its backups included.
    candidates = plan.live() if exclude is None else plan.live_without(exclude)
    sticky = plan.sticky
    if sticky is not None:
        found = sticky.sticky_backend(candidates, client, _cookies(head))
        if found is not None:
            return found
    if plan.hash_header is not None:
        value = head.header(plan.hash_header)
        return plan.balancer.pick(candidates, client, value.decode("latin-1") if value else "")
    if plan.hash_cookie is not None:
        key = cookie_value(_cookies(head), plan.hash_cookie) or ""
        return plan.balancer.pick(candidates, client, key)
    return plan.balancer.pick(candidates, client)


def sticky_lines(
    sticky: Stickiness,
    backend: Backend,
    client: str,
    request: RequestHead,
    response: ResponseHead,
    *,
    secure: bool,
) -> bytes:
    """Remember where this client went; the ``Set-Cookie`` line to add, if any."""
    set_cookies = response.header_values(b"set-cookie") if sticky.type == "app_cookie" else ()
    value = sticky.bind(
        backend,
        client,
        request_cookie=_cookies(request),
        set_cookies=[v.decode("latin-1") for v in set_cookies],
    )
    if value is None:
        return b""
    if secure:
        value += "; Secure"
    return b"Set-Cookie: " + value.encode("latin-1") + b"\r\n"
