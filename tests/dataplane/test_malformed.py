"""Requests whose framing could be read two ways: 400 and close, never forwarded.

Each case is sent as raw bytes. The comment says whether llhttp (strict mode) already
refuses it or whether Portway's own checks in protocol/request.py do.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from portway.dataplane import DataPlaneSettings
from tests.dataplane.conftest import Origin, ProxyRunner, proxy_for, raw, status_of

H = b"Host: app.example.org\r\n"

MALFORMED = {
    # llhttp refuses these:
    "cl_and_te": b"POST / HTTP/1.1\r\n"
    + H
    + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "two_content_lengths": b"POST / HTTP/1.1\r\n"
    + H
    + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "content_length_list": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 3\r\n\r\nabc",
    "content_length_sign": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\nabc",
    "content_length_hex": b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 0x3\r\n\r\nabc",
    "content_length_overflow": b"POST / HTTP/1.1\r\n"
    + H
    + b"Content-Length: 99999999999999999999999\r\n\r\n",
    "te_twice": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te_unknown": b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\nabc",
    "obs_fold": b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n continued\r\n\r\n",
    "obs_fold_tab": b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n\tcontinued\r\n\r\n",
    "bare_cr": b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r2\r\n\r\n",
    "bare_lf": b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\n\r\n",
    "nul_in_value": b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\x002\r\n\r\n",
    "nul_in_name": b"GET / HTTP/1.1\r\n" + H + b"X-\x00A: 1\r\n\r\n",
    "nul_in_url": b"GET /\x00 HTTP/1.1\r\n" + H + b"\r\n",
    "space_in_header_name": b"GET / HTTP/1.1\r\n" + H + b"X A: 1\r\n\r\n",
    "space_before_colon": b"GET / HTTP/1.1\r\n" + H + b"Content-Length : 3\r\n\r\nabc",
    "invalid_header_name": b"GET / HTTP/1.1\r\n" + H + b"X(A): 1\r\n\r\n",
    "empty_header_name": b"GET / HTTP/1.1\r\n" + H + b": 1\r\n\r\n",
    "bad_chunk_size": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "chunk_size_0x": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
    "chunk_size_overflow": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nabc\r\n",
    "chunk_missing_crlf": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
    "lower_case_method": b"get / HTTP/1.1\r\n" + H + b"\r\n",
    "bad_version": b"GET / HTTP/1.2\r\n" + H + b"\r\n",
    # llhttp accepts these; Portway refuses them:
    "te_list_ending_in_chunked": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "te_in_http10": b"POST / HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "underscore_content_length": b"POST / HTTP/1.1\r\n" + H + b"Content_Length: 3\r\n\r\nabc",
    "underscore_transfer_encoding": b"POST / HTTP/1.1\r\n"
    + H
    + b"Transfer_Encoding: chunked\r\n\r\n0\r\n\r\n",
    "http2_version": b"GET / HTTP/2.0\r\n" + H + b"\r\n",
    "two_hosts": b"GET / HTTP/1.1\r\n" + H + b"Host: other.example.org\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_gets_400_close_and_is_never_forwarded(
    case: str, proxy: ProxyRunner, origin: Origin
) -> None:
    data, closed = raw(proxy.port, MALFORMED[case])
    assert status_of(data) == 400, data[:80]
    assert b"connection: close" in data.lower()
    assert closed
    time.sleep(0.05)
    assert origin.seen == []


def test_malformed_request_after_a_good_one_answers_the_good_one_then_closes(
    proxy: ProxyRunner, origin: Origin
) -> None:
    good = b"GET /ok HTTP/1.1\r\n" + H + b"\r\n"
    data, closed = raw(proxy.port, good + MALFORMED["cl_and_te"])
    # The good request is answered with "Connection: close": the stream is broken after it.
    assert data.startswith(b"HTTP/1.1 200") and b"connection: close" in data.lower() and closed
    assert data.count(b"HTTP/1.1 ") <= 2
    assert [s.path for s in origin.seen] == ["/ok"]


def test_connect_method_is_refused(proxy: ProxyRunner, origin: Origin) -> None:
    data, closed = raw(proxy.port, b"CONNECT app.example.org:443 HTTP/1.1\r\n" + H + b"\r\n")
    assert status_of(data) == 405 and closed
    assert origin.seen == []


def test_request_line_too_long_gets_414(proxy: ProxyRunner, origin: Origin) -> None:
    data, closed = raw(proxy.port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + H + b"\r\n")
    assert status_of(data) == 414 and closed
    assert origin.seen == []


def test_header_block_too_large_gets_431(proxy: ProxyRunner, origin: Origin) -> None:
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(400))
    data, closed = raw(proxy.port, b"GET / HTTP/1.1\r\n" + H + many + b"\r\n")
    assert status_of(data) == 431 and closed
    one_huge = b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"v" * 50000 + b"\r\n\r\n"
    data, closed = raw(proxy.port, one_huge)
    assert status_of(data) == 431 and closed
    assert origin.seen == []


def test_slow_request_head_gets_408_and_close(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy(DataPlaneSettings(client_header_timeout=0.3))
    runner.route(proxy_for("app.example.org", origin.backend()))
    data, closed = raw(runner.port, b"GET / HTTP/1.1\r\nHost: app.exa", timeout=3)
    assert status_of(data) == 408 and closed
    assert origin.seen == []


def test_idle_keepalive_connection_is_closed_silently(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy(DataPlaneSettings(keepalive_timeout=0.3))
    runner.route(proxy_for("app.example.org", origin.backend()))
    started = time.monotonic()
    data, closed = raw(runner.port, b"GET / HTTP/1.1\r\n" + H + b"\r\n", timeout=3)
    assert data.startswith(b"HTTP/1.1 200") and data.count(b"HTTP/1.1") == 1 and closed
    assert time.monotonic() - started < 2.5


def test_http10_request_line_is_not_mistaken_for_http11_when_a_read_starts_mid_head(
    proxy: ProxyRunner, origin: Origin
) -> None:
    # The second read begins with bytes that look like an HTTP/1.1 request line but are a
    # header value of the HTTP/1.0 request: Transfer-Encoding stays refused on HTTP/1.0.
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=3) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"POST / HTTP/1.0\r\n" + H + b"X-A: ")
        time.sleep(0.2)
        sock.sendall(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        data = sock.recv(65536)
    assert status_of(data) == 400
    assert origin.seen == []


def test_pipelined_http10_request_after_an_http11_one_is_read_as_http10(
    proxy: ProxyRunner, origin: Origin
) -> None:
    good = b"GET / HTTP/1.1\r\n" + H + b"\r\n"
    data, closed = raw(proxy.port, good + MALFORMED["te_in_http10"].replace(b"POST", b"GET"))
    # As above: the good request is answered and the connection closes; had the second
    # been taken for HTTP/1.1, the origin would have seen it too.
    assert data.startswith(b"HTTP/1.1 200") and closed
    time.sleep(0.05)
    assert [s.path for s in origin.seen] == ["/"]
