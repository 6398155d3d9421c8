"""Forwarded headers, Location rewrite, chunk encoding, error pages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portway.errors import ConfigError
from portway.protocol import chunked, pages
from portway.protocol.forwarded import (
    ForwardedContext,
    ForwardedContexts,
    is_trusted,
    parse_networks,
)
from portway.protocol.headers import SMUGGLING, SPOOFING, classify
from portway.protocol.location import rewrite_location


def test_untrusted_peer_gets_fresh_forwarded_lines() -> None:
    ctx = ForwardedContext(peer_ip="192.0.2.7", port=8080, scheme=b"http", trusted=False)
    lines = ctx.lines(b"a.example.org", xff=b"6.6.6.6", forwarded=b"for=6.6.6.6")
    assert lines == (
        b"X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
        b"X-Forwarded-Host: a.example.org\r\nX-Forwarded-Port: 8080\r\n"
        b"Forwarded: for=192.0.2.7;proto=http;host=a.example.org\r\n"
    )


def test_connections_of_one_peer_port_and_scheme_share_a_context() -> None:
    contexts = ForwardedContexts(parse_networks(["10.0.0.0/8"]), limit=3)
    first = contexts.get("10.1.2.3", 80, b"http")
    assert contexts.get("10.1.2.3", 80, b"http") is first and first.trusted
    assert contexts.get("10.1.2.3", 443, b"https") is not first
    other = contexts.get("192.0.2.7", 80, b"http")
    assert not other.trusted
    assert other.lines(b"a.example.org", xff=b"6.6.6.6") == other.untrusted_lines(b"a.example.org")
    contexts.get("192.0.2.8", 80, b"http")  # over the limit: the cache starts over
    assert contexts.get("10.1.2.3", 80, b"http") is not first


@pytest.mark.parametrize(
    ("host", "quoted"),
    [(b"a.example.org", b"a.example.org"), (b"a.example.org:8080", b'"a.example.org:8080"')],
)
def test_forwarded_host_is_a_token_or_a_quoted_string(host: bytes, quoted: bytes) -> None:
    ctx = ForwardedContext(peer_ip="192.0.2.7", port=80, scheme=b"http", trusted=False)
    assert ctx.untrusted_lines(host).endswith(b";host=" + quoted + b"\r\n")


def test_trusted_peer_appends_and_ipv6_and_ports_are_quoted() -> None:
    ctx = ForwardedContext(peer_ip="2001:db8::1", port=80, scheme=b"http", trusted=True)
    lines = ctx.lines(b"a.example.org:8080", xff=b"203.0.113.1", forwarded=b"for=203.0.113.1")
    assert b"X-Forwarded-For: 203.0.113.1, 2001:db8::1\r\n" in lines
    assert (
        b'Forwarded: for=203.0.113.1, for="[2001:db8::1]";proto=http;host="a.example.org:8080"'
        in lines
    )


def test_trusted_networks() -> None:
    nets = parse_networks(["10.0.0.0/8", "::1/128"])
    assert is_trusted("10.1.2.3", nets) and is_trusted("::ffff:10.0.0.1", nets)
    assert is_trusted("::1", nets) and not is_trusted("192.0.2.1", nets)
    assert not is_trusted("10.0.0.1", ())
    with pytest.raises(ConfigError):
        parse_networks(["nonsense"])


def test_underscore_spellings_are_classified() -> None:
    assert classify(b"Content_Length") == SMUGGLING
    assert classify(b"TRANSFER_ENCODING") == SMUGGLING
    assert classify(b"X_Forwarded_For") == SPOOFING


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (b"http://app.example.org/x?y", b"https://app.example.org/x?y"),
        (b"HTTP://App.Example.Org:80/x", b"https://app.example.org/x"),
        (b"http://other.example.org/x", b"http://other.example.org/x"),
        (b"/relative", b"/relative"),
        (b"https://app.example.org/", b"https://app.example.org/"),
    ],
)
def test_location_rewrite_to_https(location: bytes, expected: bytes) -> None:
    got = rewrite_location(location, request_host=b"app.example.org", client_scheme=b"https")
    assert got == expected


@given(st.binary(max_size=60))
def test_location_rewrite_is_identity_on_plain_http(location: bytes) -> None:
    assert rewrite_location(location, request_host=b"a.b", client_scheme=b"http") == location


@given(st.binary(min_size=1, max_size=300))
def test_chunk_encoding_round_trips(data: bytes) -> None:
    size, body, end = chunked.encode_chunk(data)
    assert int(size[:-2], 16) == len(data) and body == data and end == b"\r\n"


@pytest.mark.parametrize("status", sorted(pages.STATUSES))
def test_error_pages_are_complete_responses(status: int) -> None:
    for close in (False, True):
        page = pages.error_response(status, close=close)
        head, _, body = page.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status)
        assert b"Content-Length: %d\r\n" % len(body) in head
        assert (b"Connection: close" in head) == (close or status in pages.ALWAYS_CLOSE)
    assert (b"Retry-After" in pages.error_response(status, close=False)) == (status in (429, 503))
