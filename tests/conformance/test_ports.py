"""Proxies on ports of their own (``listen_port``, docs/listeners.md) on every data
plane: tcp relayed, tls-passthrough by SNI with the backend's own certificate, http and
https ports with the shared listeners' hygiene, PROXY protocol v2 to the backend, and
only the ports the node's --listen-ports allows ever bound (each plane allows
``plane.ports``). The built-in plane's own cases (limits, idle, half-close, metrics) are
in tests/dataplane/test_stream.py and test_listeners.py."""

from __future__ import annotations

import dataclasses
import socket
import ssl
import threading
import time
from collections.abc import Callable

import pytest
import trustme

from portway.model import Proxy, StreamSettings
from portway.protocol.proxy_v2 import SIGNATURE
from tests.conformance.conftest import Plane
from tests.conformance.test_changes import CLIENTS, _client_loop
from tests.dataplane.conftest import Origin, proxy_for
from tests.dataplane.echo import EchoServer
from tests.dataplane.test_listeners import free_ports, refused
from tests.dataplane.test_stream import ask, by_sni, closed_soon


def on_port(proxy: Proxy, port: int, protocol: str, **kw: object) -> Proxy:
    return dataclasses.replace(proxy, listen_port=port, protocol=protocol, **kw)  # type: ignore[arg-type]


def tcp(echo: EchoServer, port: int, **kw: object) -> Proxy:
    return on_port(proxy_for("db.example.org", echo.backend(), pid="tcp"), port, "tcp", **kw)


@pytest.mark.feature("listen_port")
def test_a_tcp_port_relays_a_line_protocol(
    plane: Plane, make_echo: Callable[..., EchoServer]
) -> None:
    echo = make_echo("e1")
    port = plane.ports[0]
    limited = tcp(echo, port, stream=StreamSettings(max_connections=10), algorithm="least_conn")
    plane.route(limited)
    assert ask(port) == b"e1:hello\n"
    assert ask(port, b"second line\n") == b"e1:second line\n"
    assert echo.preludes == [b"", b""]  # no PROXY header unless asked
    plane.route()  # the last proxy goes: the port closes
    assert refused(port)


@pytest.mark.feature("listen_port")
def test_the_proxys_connection_limit_closes_the_one_too_many(
    plane: Plane, make_echo: Callable[..., EchoServer]
) -> None:
    echo, port = make_echo("e1"), plane.ports[0]
    plane.route(tcp(echo, port, stream=StreamSettings(max_connections=1)))
    with socket.create_connection(("127.0.0.1", port), timeout=3) as first:
        assert ask(port, sock=first) == b"e1:hello\n"
        with socket.create_connection(("127.0.0.1", port), timeout=3) as second:
            assert closed_soon(second)
    deadline = time.monotonic() + 3
    while answer(port) != b"e1:hello\n":  # room again once the first one ended
        assert time.monotonic() < deadline
        time.sleep(0.05)


def answer(port: int) -> bytes:
    """``ask``, with a closed connection as no answer."""
    try:
        return ask(port)
    except ConnectionError:
        return b""


@pytest.mark.feature("listen_port")
def test_a_port_outside_listen_ports_is_never_bound(
    plane: Plane, make_echo: Callable[..., EchoServer]
) -> None:
    (outside,) = free_ports(1)
    assert plane.publish([tcp(make_echo("e1"), outside)])  # served without it, reported
    assert refused(outside)


@pytest.mark.feature("listen_port")
def test_tls_passthrough_routes_by_sni_and_the_backends_certificate_reaches_the_client(
    plane: Plane, make_echo: Callable[..., EchoServer], ca: trustme.CA
) -> None:
    port = plane.ports[1]
    by_sni(plane, port, make_echo, ca)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: secure.example.org\r\n\r\n")
        assert closed_soon(sock)  # not a ClientHello: closed, nothing relayed


@pytest.mark.feature("listen_port")
def test_tls_passthrough_takes_a_one_level_wildcard_in_any_case(
    plane: Plane, make_echo: Callable[..., EchoServer], ca: trustme.CA
) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("a.w.example.org", "a.b.w.example.org").configure_cert(ctx)
    echo = make_echo("wild", tls=ctx)
    port = plane.ports[1]
    wild = proxy_for("*.w.example.org", echo.backend(), pid="wild")
    plane.route(on_port(wild, port, "tls-passthrough"))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    client.check_hostname = False  # the name's case is the point, not its check
    with client.wrap_socket(
        socket.create_connection(("127.0.0.1", port), timeout=3), server_hostname="A.W.Example.org"
    ) as tls:
        assert ask(port, sock=tls) == b"wild:hello\n"
    raw = socket.create_connection(("127.0.0.1", port), timeout=3)
    with raw, pytest.raises((ssl.SSLError, ConnectionError)):  # two labels below: no proxy
        client.wrap_socket(raw, server_hostname="a.b.w.example.org").close()
    assert echo.connections == 1


@pytest.mark.feature("listen_port")
def test_an_http_port_and_an_https_port_serve_with_the_shared_hygiene(
    plane: Plane, origin: Origin, ca: trustme.CA
) -> None:
    plain, secure = plane.ports[2:4]
    base = proxy_for("api.portway.test", origin.backend())
    plane.route(
        on_port(dataclasses.replace(base, id="h"), plain, "http"),
        on_port(dataclasses.replace(base, id="s"), secure, "https"),
    )
    client = ssl.create_default_context()
    ca.configure_trust(client)
    for port, tls in ((plain, None), (secure, client)):
        assert status(port, "api.portway.test", tls) == 200
        seen = origin.seen[-1]
        assert seen.header("X-Forwarded-For") == "127.0.0.1"  # the client's own replaced
        assert seen.header("X-Forwarded-Port") == str(port)
        assert seen.header("X-Forwarded-Proto") == ("http" if tls is None else "https")
        assert status(port, "other.portway.test", tls) == 404  # no proxy of that host here
    # The shared listener does not serve a proxy of a port of its own.
    assert status(plane.port, "api.portway.test") == 404


@pytest.mark.feature("proxy_protocol")
def test_proxy_protocol_v2_tells_the_backend_who_connected(
    plane: Plane, make_echo: Callable[..., EchoServer]
) -> None:
    echo = make_echo("e1")
    port = plane.ports[0]
    plane.route(tcp(echo, port, stream=StreamSettings(proxy_protocol=True)))
    assert ask(port) == b"e1:hello\n"
    assert echo.preludes and all(p.startswith(SIGNATURE) for p in echo.preludes)


@pytest.mark.feature("listen_port")
def test_a_port_opened_and_closed_under_load_fails_no_request_elsewhere(
    plane: Plane, make_origin: Callable[[str], Origin], make_echo: Callable[..., EchoServer]
) -> None:
    shared = proxy_for("app.example.org", make_origin("a").backend(), make_origin("b").backend())
    echo, port = make_echo("e1"), plane.ports[0]
    plane.route(shared)
    stop, failures, counts = threading.Event(), list[str](), list[int]()
    clients = [
        threading.Thread(target=_client_loop, args=(plane.port, stop, failures, counts))
        for _ in range(CLIENTS)
    ]
    for client in clients:
        client.start()
    try:
        for _ in range(3):
            plane.route(shared, tcp(echo, port))
            assert ask(port) == b"e1:hello\n"
            plane.route(shared)
            assert refused(port)
    finally:
        stop.set()
        for client in clients:
            client.join(15)
    assert failures == []
    assert len(counts) == CLIENTS and min(counts) > 0


def status(port: int, host: str, tls: ssl.SSLContext | None = None) -> int:
    """One request with a forged X-Forwarded-For, over TLS (SNI ``host``) with ``tls``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    if tls is not None:
        sock = tls.wrap_socket(sock, server_hostname=host)
    with sock:
        sock.sendall(
            f"GET /x HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-For: 6.6.6.6\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        head = sock.recv(65536)
    return int(head.split(b" ", 2)[1])
