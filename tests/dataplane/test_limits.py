"""Per-proxy timeouts and body limits, client timeouts, the connection limit."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from portway.dataplane import DataPlaneSettings
from portway.model import Limits, Timeouts
from tests.dataplane.conftest import FAST, H_APP, Origin, ProxyRunner, proxy_for, raw, status_of


def limited(make_proxy: Callable[..., ProxyRunner], origin: Origin, **kw: object) -> ProxyRunner:
    runner = make_proxy()
    runner.route(proxy_for("app.example.org", origin.backend(), **kw))
    return runner


def test_declared_body_over_the_limit_gets_413_before_any_body_is_read(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = limited(make_proxy, origin, limits=Limits(max_body_bytes=1000))
    # Only the head is sent: the answer must come without waiting for the body.
    data, closed = raw(
        runner.port, b"POST /up HTTP/1.1\r\n" + H_APP + b"Content-Length: 1001\r\n\r\n"
    )
    assert status_of(data) == 413 and closed
    assert origin.seen == []


def test_declared_body_within_the_limit_is_forwarded(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = limited(make_proxy, origin, limits=Limits(max_body_bytes=1000))
    data, _ = raw(
        runner.port,
        b"POST /up HTTP/1.1\r\n" + H_APP + b"Content-Length: 1000\r\n\r\n" + b"z" * 1000,
        timeout=1.0,
    )
    assert status_of(data) == 200
    assert origin.seen[0].body_len == 1000


def test_chunked_body_over_the_limit_gets_413_and_close_and_excess_is_not_forwarded(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = limited(make_proxy, origin, limits=Limits(max_body_bytes=1000))
    with socket.create_connection(("127.0.0.1", runner.port), timeout=3) as sock:
        sock.sendall(b"POST /up HTTP/1.1\r\n" + H_APP + b"Transfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"258\r\n" + b"a" * 600 + b"\r\n")
        time.sleep(0.1)
        sock.sendall(b"258\r\n" + b"b" * 600 + b"\r\n")
        answer = b""
        while part := sock.recv(4096):
            answer += part
    assert status_of(answer) == 413
    assert all(s.body_len <= 1000 for s in origin.seen)  # the backend never got it all


def test_client_that_stops_sending_its_body_gets_408_and_close(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = limited(make_proxy, origin, timeouts=Timeouts(idle=0.3))
    started = time.monotonic()
    data, closed = raw(
        runner.port, b"PUT /up HTTP/1.1\r\n" + H_APP + b"Content-Length: 100\r\n\r\n0123456789"
    )
    assert status_of(data) == 408 and closed
    assert time.monotonic() - started < 2.0


def test_proxy_first_byte_timeout_gets_504(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = limited(make_proxy, origin, timeouts=Timeouts(first_byte=0.3))
    # /slow answers after 2 s and the node-wide read timeout is 1 s: only the proxy's
    # own first-byte timeout can produce a 504 within 1.5 s.
    data, _ = raw(runner.port, b"GET /slow HTTP/1.1\r\n" + H_APP + b"\r\n", timeout=1.5)
    assert status_of(data) == 504


def test_proxy_total_timeout_cuts_a_long_exchange(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = limited(make_proxy, origin, timeouts=Timeouts(total=0.3))
    data, _ = raw(runner.port, b"GET /slow HTTP/1.1\r\n" + H_APP + b"\r\n", timeout=1.5)
    assert status_of(data) == 504


def test_connections_over_the_limit_get_503_and_close_at_once(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    settings = DataPlaneSettings(
        connect_timeout=1.0, read_timeout=1.0, client_header_timeout=5.0, max_connections=2
    )
    runner = make_proxy(settings)
    runner.route(proxy_for("app.example.org", origin.backend()))
    held = [socket.create_connection(("127.0.0.1", runner.port)) for _ in range(2)]
    try:
        deadline = time.monotonic() + 2
        while runner.on_loop(lambda: runner.dp.open_connections) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        started = time.monotonic()
        data, closed = raw(runner.port, b"GET / HTTP/1.1\r\n" + H_APP + b"\r\n")
        assert status_of(data) == 503 and closed
        assert time.monotonic() - started < 1.0
        assert origin.seen == []
    finally:
        for sock in held:
            sock.close()
    # Below the limit again: served.
    time.sleep(0.1)
    data, _ = raw(runner.port, b"GET / HTTP/1.1\r\n" + H_APP + b"\r\n", timeout=0.5)
    assert status_of(data) == 200


def test_slowloris_head_gets_408_after_client_header_timeout(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy(FAST)
    runner.route(proxy_for("app.example.org", origin.backend()))
    with socket.create_connection(("127.0.0.1", runner.port), timeout=3) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\n")
        answer = b""
        for line in (b"Host: app.example.org\r\n", b"X-A: 1\r\n", b"X-B: 2\r\n", b"X-C: 3\r\n"):
            time.sleep(0.3)
            try:
                sock.sendall(line)
            except OSError:
                break
        while part := sock.recv(4096):
            answer += part
    assert status_of(answer) == 408
    assert time.monotonic() - started < 2.5
    assert origin.seen == []


def test_connection_limit_is_counted_per_listener(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy(DataPlaneSettings(max_connections=1, client_header_timeout=5.0))
    runner.route(proxy_for("app.example.org", origin.backend()))
    runner.call(runner.dp.listen_http("127.0.0.1", 0))
    first, second = runner.dp.bound_ports
    held = socket.create_connection(("127.0.0.1", first))
    try:
        deadline = time.monotonic() + 2
        while runner.on_loop(lambda: runner.dp.open_connections) < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        data, closed = raw(first, b"GET / HTTP/1.1\r\n" + H_APP + b"\r\n")
        assert status_of(data) == 503 and closed
        data, _ = raw(second, b"GET / HTTP/1.1\r\n" + H_APP + b"\r\n", timeout=0.5)
        assert status_of(data) == 200  # the other listener has its own allowance
    finally:
        held.close()
    time.sleep(0.1)
    data, _ = raw(first, b"GET / HTTP/1.1\r\n" + H_APP + b"\r\n", timeout=0.5)
    assert status_of(data) == 200
    deadline = time.monotonic() + 2  # every close is counted back
    while runner.on_loop(lambda: sum(runner.dp.listener_connections.values())) != 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_first_byte_timeout_runs_from_the_end_of_a_body_sent_in_pieces(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    settings = DataPlaneSettings(
        connect_timeout=1.0, read_timeout=5.0, client_header_timeout=1.0, keepalive_timeout=5.0
    )
    runner = make_proxy(settings)
    runner.route(
        proxy_for("app.example.org", origin.backend(), timeouts=Timeouts(first_byte=0.3, idle=5.0))
    )
    with socket.create_connection(("127.0.0.1", runner.port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(b"POST /slow HTTP/1.1\r\n" + H_APP + b"Content-Length: 10\r\n\r\n01234")
        time.sleep(0.2)  # the request is bound to the backend; the body's end comes later
        sock.sendall(b"56789")
        sent = time.monotonic()
        answer = sock.recv(65536)
    # /slow answers after 2 s: the 504 must come from first_byte, not from idle (5 s).
    assert status_of(answer) == 504
    assert time.monotonic() - sent < 1.5


def test_first_byte_timeout_applies_to_a_pipelined_request_on_a_reused_connection(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    # The second request goes out on the backend connection the first answer just freed,
    # from inside that connection's read callback: its first-byte timer must hold.
    settings = DataPlaneSettings(
        connect_timeout=1.0, read_timeout=5.0, client_header_timeout=1.0, keepalive_timeout=5.0
    )
    runner = make_proxy(settings)
    runner.route(
        proxy_for("app.example.org", origin.backend(), timeouts=Timeouts(first_byte=0.3, idle=5.0))
    )
    with socket.create_connection(("127.0.0.1", runner.port), timeout=3) as sock:
        started = time.monotonic()
        sock.sendall(
            b"GET /a HTTP/1.1\r\n" + H_APP + b"\r\nGET /slow HTTP/1.1\r\n" + H_APP + b"\r\n"
        )
        data = b""
        while data.count(b"HTTP/1.1 ") < 2 and (part := sock.recv(65536)):
            data += part
        elapsed = time.monotonic() - started
    statuses = [int(part.split(b" ", 1)[0]) for part in data.split(b"HTTP/1.1 ")[1:]]
    assert statuses == [200, 504]
    assert elapsed < 1.8  # /slow would have answered 200 after 2 s
    assert len(origin.connections) == 1  # both went over the same backend connection
