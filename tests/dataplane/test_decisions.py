"""Forwarding decisions and the proxy's own answers, with values alone: no sockets, no loop."""

from __future__ import annotations

import dataclasses

import pytest

from portway.dataplane import answers, forwarding
from portway.dataplane.exchange import Exchange
from portway.dataplane.plans import Plan, Plans
from portway.dataplane.pool import UpstreamPool
from portway.dataplane.settings import DataPlaneSettings
from portway.dataplane.tls import Handshake
from portway.model import Backend, Limits, Proxy, TlsSettings
from portway.protocol.request import RequestHead
from portway.router import RouteTable, Snapshot

A = Backend(id="a", address="127.0.0.1", port=1)
B = Backend(id="b", address="127.0.0.1", port=2)
PROXY = Proxy(id="p", project="t", hostname="app.example.org", backends=(A, B))
REDIRECTING = Proxy(
    id="r",
    project="t",
    hostname="plain.example.org",
    backends=(A,),
    tls=TlsSettings(redirect_http=True),
)


def plans() -> Plans:
    return Plans(UpstreamPool(4), DataPlaneSettings())


def snapshot(*proxies: Proxy) -> Snapshot:
    return Snapshot(version=1, routes=RouteTable.build(proxies or (PROXY, REDIRECTING)))


def head(url: bytes = b"/", **headers: bytes) -> RequestHead:
    h = RequestHead(32768)
    h.add_url(url, 8192)
    h.add_header(b"Host", b"app.example.org")
    for name, value in headers.items():
        h.add_header(name.replace("_", "-").encode(), value)
    h.complete(b"POST" if "Content_Length" in headers else b"GET", "1.1", True)
    return h


# -- route ------------------------------------------------------------


def test_route_gives_the_proxys_plan() -> None:
    p = plans()
    found = forwarding.route(snapshot(), p, head(), "app.example.org", None)
    assert isinstance(found, Plan) and found.proxy is PROXY
    assert forwarding.route(snapshot(), p, head(), "app.example.org", None) is found  # cached


@pytest.mark.parametrize(
    ("host", "tls", "status"),
    [
        (None, None, 400),  # not a valid Host
        ("nobody.example.org", None, 404),
        ("plain.example.org", None, 301),  # redirect_http on plain HTTP
        ("app.example.org", Handshake("other.example.org", None, None), 421),
    ],
)
def test_route_answers_with_a_status_when_it_cannot_give_a_plan(
    host: str | None, tls: Handshake | None, status: int
) -> None:
    assert forwarding.route(snapshot(), plans(), head(), host, tls) == status


def test_redirecting_proxy_is_served_on_https() -> None:
    tls = Handshake("plain.example.org", None, None)
    found = forwarding.route(snapshot(), plans(), head(), "plain.example.org", tls)
    assert isinstance(found, Plan) and found.proxy is REDIRECTING


# -- body limit, backend choice ------------------------------------------------------------


def plan_for(proxy: Proxy = PROXY) -> Plan:
    return plans().get(proxy)


def test_declared_body_over_the_limit_is_refused_before_reading_it() -> None:
    limited = plan_for(dataclasses.replace(PROXY, limits=Limits(max_body_bytes=10)))
    assert forwarding.body_too_large(limited, head(Content_Length=b"11"), 0)
    assert not forwarding.body_too_large(limited, head(Content_Length=b"10"), 0)


def test_choose_picks_a_live_backend_and_none_when_all_are_gone() -> None:
    assert forwarding.choose(plan_for(), head(), "192.0.2.1") in (A, B)
    assert forwarding.choose(plan_for(dataclasses.replace(PROXY, backends=())), head(), "x") is None


# -- failures and retries ------------------------------------------------------------


def exchange(**fields: object) -> Exchange:
    ex = Exchange(head(), 0.0)
    ex.plan, ex.backend = plan_for(), A
    for name, value in fields.items():
        setattr(ex, name, value)
    return ex


@pytest.mark.parametrize(
    ("fields", "got_bytes", "reused", "decision"),
    [
        ({}, False, True, forwarding.RECONNECT),  # a pooled connection was already dead
        ({"stale_retried": True}, False, True, forwarding.RETRY),  # only once
        ({"body_sent": True}, False, True, forwarding.RETRY),  # cannot resend the body
        ({}, False, False, forwarding.RETRY),  # a fresh connection failed: the backend's fault
        ({}, True, True, forwarding.ANSWER),  # the backend had answered something
        ({"response_started": True}, False, False, forwarding.ANSWER),
    ],
)
def test_failed_upstream_leads_to_reconnect_retry_or_answer(
    fields: dict[str, object], got_bytes: bool, reused: bool, decision: int
) -> None:
    assert forwarding.after_failure(exchange(**fields), got_bytes, reused) == decision


def test_retry_goes_to_another_backend_once_while_the_body_can_be_resent() -> None:
    assert forwarding.retry_backend(exchange(), "192.0.2.1") is B
    assert forwarding.retry_backend(exchange(retried=True), "192.0.2.1") is None
    assert forwarding.retry_backend(exchange(body_sent=True), "192.0.2.1") is None
    assert forwarding.retry_backend(exchange(response_started=True), "192.0.2.1") is None


def test_retry_without_another_backend_is_none() -> None:
    ex = exchange()
    ex.plan = plan_for(dataclasses.replace(PROXY, backends=(A,)))
    assert forwarding.retry_backend(ex, "192.0.2.1") is None


# -- the proxy's own answers ------------------------------------------------------------


def test_error_page_keeps_alive_unless_told_or_the_status_always_closes() -> None:
    page, close = answers.error_page(404, head_only=False, close=False)
    assert page.startswith(b"HTTP/1.1 404") and b"Connection: close" not in page and not close
    page, close = answers.error_page(404, head_only=False, close=True)
    assert b"Connection: close" in page and close
    page, close = answers.error_page(400, head_only=False, close=False)  # stream not trusted
    assert b"Connection: close" in page and close


def test_error_page_for_head_has_no_body() -> None:
    page, _ = answers.error_page(503, head_only=True, close=False)
    assert page.endswith(b"\r\n\r\n") and b"Content-Length: " in page


def test_redirect_points_at_the_https_listener() -> None:
    page, close = answers.redirect("app.example.org", b"/a?b=1", 8443, close=False)
    assert page.startswith(b"HTTP/1.1 301") and not close
    assert b"Location: https://app.example.org:8443/a?b=1\r\n" in page


def test_last_word_always_closes() -> None:
    assert b"Connection: close" in answers.last_word(408)
