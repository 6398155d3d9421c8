"""What the backend sees from the built-in plane: a trusted peer's forwarded headers,
hop-by-hop hygiene, keep-alive reuse. (The forwarded headers every data plane sets:
tests/conformance/test_headers.py.)"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable

from portway.dataplane import DataPlaneSettings
from tests.dataplane.conftest import FAST, Origin, ProxyRunner, proxy_for, raw


def request(
    port: int, headers: dict[str, str], path: str = "/", method: str = "GET"
) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path, headers={"Host": "app.example.org", **headers})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_trusted_peer_forwarded_headers_are_appended_to(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    settings = DataPlaneSettings(trusted_proxies=("127.0.0.0/8",), read_timeout=FAST.read_timeout)
    runner = make_proxy(settings)
    runner.route(proxy_for("app.example.org", origin.backend()))
    request(
        runner.port,
        {
            "X-Forwarded-For": "203.0.113.9",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "public.example.org",
            "Forwarded": 'for="[2001:db8::1]";proto=https',
        },
    )
    seen = origin.seen[-1]
    assert seen.header("X-Forwarded-For") == "203.0.113.9, 127.0.0.1"
    assert seen.header("X-Forwarded-Proto") == "https"
    assert seen.header("X-Forwarded-Host") == "public.example.org"
    assert seen.header("Forwarded") == (
        'for="[2001:db8::1]";proto=https, for=127.0.0.1;proto=http;host=app.example.org'
    )


def test_hop_by_hop_and_connection_named_headers_are_stripped_but_not_ours(
    proxy: ProxyRunner, origin: Origin
) -> None:
    request(
        proxy.port,
        {
            "Connection": "keep-alive, X-Private, Host, X-Forwarded-For, Forwarded",
            "Keep-Alive": "timeout=5",
            "X-Private": "secret",
            "X-Public": "ok",
            "TE": "trailers",
            "Trailer": "X-T",
            "Upgrade": "h2c",
            "Proxy-Connection": "keep-alive",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "Proxy": "http://evil.example:3128",
        },
    )
    seen = origin.seen[-1]
    for name in (
        "Connection",
        "Keep-Alive",
        "X-Private",
        "TE",
        "Trailer",
        "Upgrade",
        "Proxy-Connection",
        "Proxy-Authorization",
        "Proxy",
    ):
        assert seen.header(name) is None, name
    assert seen.header("X-Public") == "ok"
    assert seen.header("Host") == "app.example.org"
    assert seen.header("X-Forwarded-For") == "127.0.0.1"
    assert seen.header("Forwarded") is not None


def test_response_hop_by_hop_headers_are_stripped(proxy: ProxyRunner) -> None:
    response = request(proxy.port, {}, path="/hop")
    assert response.status == 200
    assert response.getheader("X-Secret") is None
    assert response.getheader("Keep-Alive") is None


def test_upstream_connections_are_reused_across_requests(
    proxy: ProxyRunner, origin: Origin
) -> None:
    for _ in range(5):
        request(proxy.port, {})  # a fresh client connection each time
    assert len(origin.seen) == 5
    assert len(origin.connections) == 1


def test_http10_client_gets_no_keepalive_unless_asked(proxy: ProxyRunner, origin: Origin) -> None:
    data, closed = raw(proxy.port, b"GET / HTTP/1.0\r\nHost: app.example.org\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200") and closed
    assert b"connection: close" in data.lower()
    ask = b"GET / HTTP/1.0\r\nHost: app.example.org\r\nConnection: keep-alive\r\n\r\n"
    data, closed = raw(proxy.port, ask, timeout=1.0)
    assert data.startswith(b"HTTP/1.1 200") and not closed
    assert b"connection: keep-alive" in data.lower()


def test_pipelined_requests_are_answered_in_order(proxy: ProxyRunner, origin: Origin) -> None:
    reqs = (
        b"".join(b"GET /%d HTTP/1.1\r\nHost: app.example.org\r\n\r\n" % i for i in range(5))
        + b"GET /last HTTP/1.1\r\nHost: app.example.org\r\nConnection: close\r\n\r\n"
    )
    data, closed = raw(proxy.port, reqs)
    assert closed
    bodies = [b"one /%d 0" % i for i in range(5)] + [b"one /last 0"]
    positions = [data.find(body) for body in bodies]
    assert all(p > 0 for p in positions) and positions == sorted(positions)
    assert data.count(b"HTTP/1.1 200") == 6


def test_request_arriving_while_previous_is_in_flight_waits_its_turn(
    proxy: ProxyRunner, origin: Origin
) -> None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(b"GET /pause HTTP/1.1\r\nHost: app.example.org\r\n\r\n")
        time.sleep(0.1)  # the first request is now at the backend
        sock.sendall(b"GET /second HTTP/1.1\r\nHost: app.example.org\r\nConnection: close\r\n\r\n")
        data = b""
        while part := sock.recv(65536):
            data += part
    assert data.index(b"paused") < data.index(b"one /second 0")
    assert [s.path for s in origin.seen] == ["/pause", "/second"]
