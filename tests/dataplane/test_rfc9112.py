"""Valid HTTP/1.1 that a strict parser can mistake for bad input (issue 11 §4): field
values with trailing whitespace, chunked trailer fields, absolute-form targets.

Each case was checked against RFC 9110/9112 and failed before its fix (400 for the
first two; the third was routed by Host and forwarded with the absolute URI)."""

from __future__ import annotations

import dataclasses
import re
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from portway.model import Backend
from tests.dataplane.conftest import H_APP, Origin, ProxyRunner, proxy_for, raw, status_of

_CLOSE = b"Connection: close\r\n\r\n"


class CapturingOrigin:
    """A backend that keeps the raw bytes of each request and answers 200 once the
    request is complete (a chunked body's end, or the declared length)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while not _complete(data):
                    got = conn.recv(65536)
                    if not got:
                        break
                    data += got
                self.requests.append(data)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    def close(self) -> None:
        self.sock.close()


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        # The last chunk, then trailer fields (if any) and the blank line.
        return re.search(rb"(^|\r\n)0\r\n(.+\r\n)*\r\n$", body) is not None
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


@pytest.fixture
def capturing() -> Iterator[CapturingOrigin]:
    origin = CapturingOrigin()
    yield origin
    origin.close()


def routed(make_proxy: Callable[..., ProxyRunner], port: int) -> ProxyRunner:
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", Backend(id="c", address="127.0.0.1", port=port)))
    return runner


# -- RFC 9110 §5.5: whitespace around a field value is not part of it ------------------------


def test_content_length_with_trailing_whitespace_is_forwarded(
    make_proxy: Callable[..., ProxyRunner], capturing: CapturingOrigin
) -> None:
    runner = routed(make_proxy, capturing.port)
    data, _ = raw(
        runner.port,
        b"POST /up HTTP/1.1\r\n" + H_APP + b"Content-Length: 5  \t\r\n" + _CLOSE + b"hello",
    )
    assert status_of(data) == 200
    sent = capturing.requests[-1]
    assert b"\r\nContent-Length: 5\r\n" in sent and sent.endswith(b"\r\n\r\nhello")


def test_framing_and_host_values_with_trailing_whitespace_are_read_without_it(
    make_proxy: Callable[..., ProxyRunner], capturing: CapturingOrigin
) -> None:
    runner = routed(make_proxy, capturing.port)
    data, _ = raw(
        runner.port,
        b"POST /up HTTP/1.1\r\nHost: app.example.org \r\nTransfer-Encoding: chunked \r\n"
        + _CLOSE
        + b"5\r\nhello\r\n0\r\n\r\n",
    )
    assert status_of(data) == 200
    sent = capturing.requests[-1]
    assert re.search(rb"\r\nHost: app\.example\.org[ \t]*\r\n", sent)  # OWS may stay
    assert sent.endswith(b"5\r\nhello\r\n0\r\n\r\n")


def test_an_invalid_content_length_is_still_refused(
    make_proxy: Callable[..., ProxyRunner], capturing: CapturingOrigin
) -> None:
    runner = routed(make_proxy, capturing.port)
    for value in (b"5 5", b"+5", b"5,5", b"0x5"):
        data, closed = raw(
            runner.port, b"POST / HTTP/1.1\r\n" + H_APP + b"Content-Length: " + value + b"\r\n\r\n"
        )
        assert status_of(data) == 400 and closed, value
    assert capturing.requests == []


# -- RFC 9112 §7.1.2: trailer fields of a chunked request -----------------------------------


def test_chunked_request_with_trailer_fields_is_forwarded_without_them(
    make_proxy: Callable[..., ProxyRunner], capturing: CapturingOrigin
) -> None:
    runner = routed(make_proxy, capturing.port)
    data, _ = raw(
        runner.port,
        b"POST /t HTTP/1.1\r\n"
        + H_APP
        + b"Transfer-Encoding: chunked\r\n"
        + _CLOSE
        + b"5\r\nhello\r\n0\r\nX-T: 1\r\nHost: other.test\r\n\r\n",
    )
    assert status_of(data) == 200
    sent = capturing.requests[-1]
    # The body and its end arrive; no trailer field does (docs/dataplane.md).
    assert sent.endswith(b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert b"X-T" not in sent and b"other.test" not in sent


def test_framing_fields_in_a_trailer_are_refused(
    make_proxy: Callable[..., ProxyRunner], capturing: CapturingOrigin
) -> None:
    # RFC 9110 §6.5.1: framing fields cannot be trailers; one that arrives there is a
    # request two parsers could frame differently.
    runner = routed(make_proxy, capturing.port)
    for field in (b"Content-Length: 99", b"Transfer-Encoding: chunked"):
        data, closed = raw(
            runner.port,
            b"POST /t HTTP/1.1\r\n"
            + H_APP
            + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
            + field
            + b"\r\n\r\n",
        )
        assert status_of(data) == 400 and closed, field


def test_trailer_fields_beyond_the_head_limit_are_refused(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", origin.backend()))
    limit = runner.dp.settings.max_header_bytes
    trailers = b"".join(b"X-T%d: %s\r\n" % (i, b"v" * 1000) for i in range(limit // 1000 + 2))
    data, closed = raw(
        runner.port,
        b"POST /t HTTP/1.1\r\n"
        + H_APP
        + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
        + trailers
        + b"\r\n",
    )
    assert status_of(data) == 431 and closed


# -- RFC 9112 §3.2.2: an absolute-form target's authority replaces Host ---------------------


def test_absolute_form_is_routed_by_its_authority_and_forwarded_in_origin_form(
    make_proxy: Callable[..., ProxyRunner], make_origin: Callable[[str], Origin]
) -> None:
    a, b = make_origin("alpha"), make_origin("beta")
    runner = make_proxy()
    runner.route(
        dataclasses.replace(proxy_for("a.example.org", a.backend()), project="alpha"),
        dataclasses.replace(proxy_for("b.example.org", b.backend()), project="beta"),
    )
    for target, host, origin in (
        (b"http://b.example.org/x?q=1", b"a.example.org", b),
        (b"HTTP://A.example.org:80/y", b"b.example.org", a),
        (b"https://b.example.org", b"b.example.org", b),
    ):
        data, _ = raw(
            runner.port, b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + _CLOSE
        )
        assert status_of(data) == 200, target
        seen = origin.seen[-1]
        authority = target.split(b"://")[1].split(b"/")[0].decode()
        assert seen.header("Host") == authority
        assert seen.path == (
            "/" + target.split(b"/", 3)[3].decode() if target.count(b"/") > 2 else "/"
        )
    assert len(a.seen) == 1 and len(b.seen) == 2


def test_absolute_form_options_without_a_path_is_forwarded_as_asterisk(
    make_proxy: Callable[..., ProxyRunner], capturing: CapturingOrigin
) -> None:
    runner = routed(make_proxy, capturing.port)
    data, _ = raw(runner.port, b"OPTIONS http://app.example.org HTTP/1.1\r\n" + H_APP + _CLOSE)
    assert status_of(data) == 200
    assert capturing.requests[-1].startswith(b"OPTIONS * HTTP/1.1\r\n")


@pytest.mark.parametrize(
    "target",
    [
        b"http://user@app.example.org/x",  # RFC 9110 §4.2.4: userinfo is an error
        b"ftp://app.example.org/x",
        b"http:///x",
        b"http://app.example.org:99999999/x",
    ],
)
def test_absolute_forms_portway_cannot_route_unambiguously_get_400(
    make_proxy: Callable[..., ProxyRunner], origin: Origin, target: bytes
) -> None:
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", origin.backend()))
    data, closed = raw(runner.port, b"GET " + target + b" HTTP/1.1\r\n" + H_APP + _CLOSE)
    assert status_of(data) == 400 and closed, target
    assert origin.seen == []


def test_trailer_fields_of_a_chunked_response_are_dropped(
    make_proxy: Callable[..., ProxyRunner],
) -> None:
    # A backend answering two requests on one connection, each chunked with a trailer.
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\nok\r\n0\r\nX-Secret: 1\r\nSet-Cookie: s=1\r\n\r\n"
    )
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            for _ in range(2):
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    try:
        runner = routed(make_proxy, int(server.getsockname()[1]))
        get = b"GET / HTTP/1.1\r\n" + H_APP + b"\r\n"
        data, _ = raw(runner.port, get + get[:-2] + _CLOSE)
    finally:
        server.close()
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert data.count(b"2\r\nok\r\n0\r\n\r\n") == 2
    assert b"X-Secret" not in data and b"s=1" not in data


def test_a_response_content_length_with_trailing_whitespace_is_relayed(
    make_proxy: Callable[..., ProxyRunner],
) -> None:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2 \t\r\n\r\nok")

    threading.Thread(target=serve, daemon=True).start()
    try:
        runner = routed(make_proxy, int(server.getsockname()[1]))
        data, _ = raw(runner.port, b"GET / HTTP/1.1\r\n" + H_APP + _CLOSE)
    finally:
        server.close()
    assert status_of(data) == 200 and b"\r\nContent-Length: 2\r\n" in data
    assert data.endswith(b"\r\n\r\nok")
