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
from portway.model.proxy import STREAM_PROTOCOLS
from portway.protocol import request as req
from portway.router.tools import legacy_split, redirect_location

if TYPE_CHECKING:
    from portway.dataplane.exchange import Exchange
    from portway.dataplane.plans import Plan, Plans
    from portway.dataplane.tls import Handshake
    from portway.model import Backend
    from portway.protocol.request import RequestHead
    from portway.router import Route, Snapshot
    from portway.router.tools import ToolDomains

# Statuses route() answers with instead of a plan (301: redirect to the HTTPS listener).
BAD_HOST: Final = 400
WRONG_CERTIFICATE: Final = 421
NO_ROUTE: Final = 404
TO_HTTPS: Final = 301
TOOL_REDIRECT: Final = 307  # a canonical tool on the legacy domain (tool_redirect)

# Decisions of after_failure().
RECONNECT: Final = 1  # a pooled connection was dead: a fresh one to the same backend
RETRY: Final = 2  # unanswered: report the backend, then try another one once
ANSWER: Final = 3  # the backend had answered something: the error page, or a cut


def route(
    snapshot: Snapshot,
    plans: Plans,
    head: RequestHead,
    host: str | None,
    tls: Handshake | None,
    port: int | None = None,
) -> Plan | int:
    """Host and path → the proxy's plan, or the status to answer (see the constants).
    ``host`` is the normalised Host header (None when it is not a valid host), ``tls``
    what the TLS handshake chose (None on plain HTTP), ``port`` the port of its own the
    request came in on (None: the shared listeners)."""
    if host is None:
        return BAD_HOST
    if tls is not None and not tls.allows(host):
        return WRONG_CERTIFICATE  # another certificate's name on this TLS connection
    if port is not None:
        return _on_port(snapshot, plans, head, host, port)
    tools = plans.settings.toolforge
    if tools is not None and host == tools.legacy:
        return _legacy(snapshot, plans, head.path, tools, tls)
    found = snapshot.routes.match(host, head.path)
    if found is None:
        if tools is not None and tools.covers(host):
            return _tool_default(plans, tools, tls)
        return NO_ROUTE
    if tls is None and found.proxy.tls.redirect_http:
        return TO_HTTPS
    if found.tool is not None:
        return _tool_path(plans, found, head.path, tools, tls)
    return plans.get(found.proxy)


def _on_port(
    snapshot: Snapshot, plans: Plans, head: RequestHead, host: str, port: int
) -> Plan | int:
    """A port of its own routes its own proxies by host and path, nothing else: no
    Toolforge names, no redirect to the shared HTTPS listener."""
    table = snapshot.routes.on_port(port)
    found = None if table is None else table.match(host, head.path)
    if found is None or found.proxy.protocol in STREAM_PROTOCOLS:
        return NO_ROUTE
    return plans.get(found.proxy)


def _tool_path(
    plans: Plans, found: Route, path: str, tools: ToolDomains | None, tls: Handshake | None
) -> Plan | int:
    """The plan of the tool's first pattern that matches ``path``, else the default."""
    assert found.tool is not None
    narrowed = found.tool.match(path)
    if narrowed is not None:
        return plans.get(narrowed)
    return NO_ROUTE if tools is None else _tool_default(plans, tools, tls)


def _legacy(
    snapshot: Snapshot, plans: Plans, path: str, tools: ToolDomains, tls: Handshake | None
) -> Plan | int:
    """``/<tool>/<rest>`` on the legacy domain: 307 for a canonical tool, else the tool's
    patterns matched against ``<rest>`` (the request keeps its full URI)."""
    if tls is None and tools.https:
        return TO_HTTPS
    tool, rest = legacy_split(path)
    found = snapshot.routes.tool(tools.tool_host(tool)) if tool else None
    if found is None:
        return _tool_default(plans, tools, tls)
    toolforge = found.proxy.toolforge
    if toolforge is not None and toolforge.canonical:
        return TOOL_REDIRECT
    return _tool_path(plans, found, rest, tools, tls)


def _tool_default(plans: Plans, tools: ToolDomains, tls: Handshake | None) -> Plan | int:
    """What no tool answers under the Toolforge names: the default backend, or 404."""
    default = tools.default
    if default is None:
        return NO_ROUTE
    if tls is None and default.tls.redirect_http:
        return TO_HTTPS
    return plans.get(default)


def tool_redirect(tools: ToolDomains, path: str, url: bytes) -> bytes:
    """The Location of a TOOL_REDIRECT answer to a request for ``url``."""
    tool, _ = legacy_split(path)
    return redirect_location(tools, tool, url)


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
