"""Proxies on ports of their own (``listen_port``, docs/listeners.md) served by a real
nginx and a real HAProxy: tcp relayed (nginx ``stream {}``, HAProxy ``mode tcp``),
tls-passthrough by SNI with the backend's own certificate, http and https ports with the
shared listeners' hygiene, and only the ports the node's --listen-ports allows ever
bound. The built-in plane's counterparts are in tests/dataplane/test_stream.py and
test_listeners.py."""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from portway.model import Proxy, StreamSettings
from portway.protocol.proxy_v2 import SIGNATURE
from tests.dataplane.conftest import Origin, proxy_for
from tests.dataplane.echo import EchoServer
from tests.dataplane.test_listeners import free_ports, policy_for, refused
from tests.dataplane.test_stream import ask, by_sni, closed_soon
from tests.dataplane.tls_origin import default_pair
from tests.drivers.conftest import NginxRunner
from tests.drivers.haproxy_runner import HaproxyRunner

Runner = NginxRunner | HaproxyRunner


@pytest.fixture(params=["nginx", "haproxy"])
def make_plane(
    request: pytest.FixtureRequest,
    make_nginx: Callable[..., NginxRunner],
    make_haproxy: Callable[..., HaproxyRunner],
) -> Callable[..., Runner]:
    """A driver with ``listen_policy``, and ``default_certificate`` as (chain, key)."""

    def make(**kw: Any) -> Runner:
        if request.param == "haproxy":
            return make_haproxy(**kw)
        pair = kw.pop("default_certificate", None)
        return make_nginx(default_certificate=tuple(map(str, pair)) if pair else None, **kw)

    return make


def on_port(proxy: Proxy, port: int, protocol: str, **kw: object) -> Proxy:
    return dataclasses.replace(proxy, listen_port=port, protocol=protocol, **kw)  # type: ignore[arg-type]


def test_a_tcp_port_relays_the_echo_server(
    make_plane: Callable[..., Runner], make_echo: Callable[..., EchoServer]
) -> None:
    echo = make_echo("e1")
    port, outside = free_ports(2)
    plane = make_plane(listen_policy=policy_for(port))
    tcp = on_port(proxy_for("db.example.org", echo.backend(), pid="tcp"), port, "tcp")
    limited = dataclasses.replace(tcp, stream=StreamSettings(max_connections=10))
    plane.route(dataclasses.replace(limited, algorithm="least_conn"))
    assert ask(port) == b"e1:hello\n"
    assert ask(port, b"second line\n") == b"e1:second line\n"
    assert echo.preludes == [b"", b""]  # no PROXY header unless asked
    assert refused(outside)


def test_proxy_protocol_v2_on_haproxy_and_refused_by_nginx_which_sends_only_v1(
    make_plane: Callable[..., Runner], make_echo: Callable[..., EchoServer]
) -> None:
    echo = make_echo("e1")
    (port,) = free_ports(1)
    plane = make_plane(listen_policy=policy_for(port))
    tcp = on_port(proxy_for("db.example.org", echo.backend(), pid="tcp"), port, "tcp")
    assert plane.publish([dataclasses.replace(tcp, stream=StreamSettings(proxy_protocol=True))])
    if isinstance(plane, NginxRunner):
        problems = {(p.proxy_id, p.field, p.served) for p in plane.driver.problems}
        assert ("tcp", "stream.proxy_protocol", False) in problems
        assert refused(port)
        return
    assert ask(port) == b"e1:hello\n"
    assert echo.preludes and all(p.startswith(SIGNATURE) for p in echo.preludes)


def test_a_port_outside_the_policy_is_never_bound_and_reported(
    make_plane: Callable[..., Runner], make_echo: Callable[..., EchoServer]
) -> None:
    echo = make_echo("e1")
    allowed, outside = free_ports(2)
    plane = make_plane(listen_policy=policy_for(allowed))
    proxy = on_port(proxy_for("db.example.org", echo.backend(), pid="out"), outside, "tcp")
    assert plane.publish([proxy])
    assert refused(outside)
    assert ("out", "listen_port") in {(p.proxy_id, p.field) for p in plane.driver.problems}


def test_tls_passthrough_routes_by_sni_and_the_backends_own_certificate_reaches_the_client(
    make_plane: Callable[..., Runner],
    make_echo: Callable[..., EchoServer],
    ca: trustme.CA,
) -> None:
    port = by_sni(lambda policy: make_plane(listen_policy=policy), make_echo, ca)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: secure.example.org\r\n\r\n")
        assert closed_soon(sock)  # not a ClientHello: closed, nothing relayed


def test_an_http_port_and_an_https_port_serve_with_the_shared_hygiene(
    make_plane: Callable[..., Runner],
    origin: Origin,
    ca: trustme.CA,
    tmp_path: Path,
) -> None:
    plain, secure = free_ports(2)
    plane = make_plane(
        listen_policy=policy_for(plain, secure), default_certificate=default_pair(ca, tmp_path)
    )
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
    # The shared listener does not serve a proxy of a port of its own.
    assert status(plane.port, "api.portway.test") == 404


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
