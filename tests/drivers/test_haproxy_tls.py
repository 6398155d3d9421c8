"""HTTPS through a real HAProxy driven by Portway: certificate per SNI (crt-list), PEM
files written 0600, redirect to HTTPS with HSTS, and WebSocket upgrades."""

from __future__ import annotations

import dataclasses
import http.client
import socket
import ssl
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from websockets.sync.client import connect

from portway.model import TlsSettings
from tests.dataplane.conftest import Origin, proxy_for
from tests.dataplane.wsorigin import WsOrigin, ws_connect
from tests.drivers.conftest import certificate
from tests.drivers.haproxy_runner import HaproxyRunner, default_pair


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_haproxy(
    ca: trustme.CA, make_haproxy: Callable[..., HaproxyRunner], tmp_path: Path
) -> Iterator[HaproxyRunner]:
    yield make_haproxy(default_certificate=default_pair(ca, tmp_path))


def served_names(
    ca: trustme.CA, port: int, sni: str, request: bytes = b""
) -> tuple[list[str], bytes]:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.check_hostname = False
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with raw, ctx.wrap_socket(raw, server_hostname=sni) as tls:
        cert = tls.getpeercert()
        assert cert is not None
        names = [str(v) for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        data = b""
        if request:
            tls.sendall(request)
            while chunk := tls.recv(65536):
                data += chunk
    return names, data


def test_certificate_per_sni_and_keys_written_0600(
    ca: trustme.CA, tls_haproxy: HaproxyRunner, origin: Origin
) -> None:
    certs = [
        certificate(ca.issue_cert("a.example.org"), "exact"),
        certificate(ca.issue_cert("*.example.org"), "wild"),
    ]
    proxies = [
        dataclasses.replace(
            proxy_for("a.example.org", origin.backend()), tls=TlsSettings(certificate="exact")
        ),
        dataclasses.replace(
            proxy_for("*.example.org", origin.backend()), tls=TlsSettings(certificate="wild")
        ),
        proxy_for("c.other.org", origin.backend()),
    ]
    assert tls_haproxy.publish(proxies, certs), tls_haproxy.driver.errors
    port = tls_haproxy.tls_port
    request = b"GET /s HTTP/1.1\r\nHost: a.example.org\r\nConnection: close\r\n\r\n"
    names, response = served_names(ca, port, "a.example.org", request)
    assert names == ["a.example.org"]
    assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"one /s 0")
    assert origin.seen[-1].header("X-Forwarded-Proto") == "https"
    assert served_names(ca, port, "b.example.org")[0] == ["*.example.org"]
    assert served_names(ca, port, "c.other.org")[0] == ["*.portway.test", "portway.test"]
    assert served_names(ca, port, "nobody.example.com")[0] == ["*.portway.test", "portway.test"]
    pems = list((tls_haproxy.driver.conf / "certs").glob("*.pem"))
    assert len(pems) == 3  # the two attached and the default
    for pem in pems:
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert tls_haproxy.publish(proxies[1:], certs)  # an unused certificate leaves the tree
    assert len(list((tls_haproxy.driver.conf / "certs").glob("*.pem"))) == 2


def test_redirect_to_https_and_hsts(
    ca: trustme.CA, tls_haproxy: HaproxyRunner, origin: Origin
) -> None:
    tls = TlsSettings(redirect_http=True, hsts=True)
    tls_haproxy.route(dataclasses.replace(proxy_for("r.portway.test", origin.backend()), tls=tls))
    conn = http.client.HTTPConnection("127.0.0.1", tls_haproxy.port, timeout=5)
    conn.request("GET", "/p?q=1", headers={"Host": "r.portway.test:8080"})
    response = conn.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == f"https://r.portway.test:{tls_haproxy.tls_port}/p?q=1"
    assert response.getheader("Strict-Transport-Security") is None  # never on plain HTTP
    request = b"GET /x HTTP/1.1\r\nHost: r.portway.test\r\nConnection: close\r\n\r\n"
    _, data = served_names(ca, tls_haproxy.tls_port, "r.portway.test", request)
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 200")
    assert b"\r\nstrict-transport-security: max-age=31536000" in head


def test_websocket_upgrade_is_tunnelled(haproxy: HaproxyRunner, ws_origin: WsOrigin) -> None:
    haproxy.route(proxy_for("app.example.org", ws_origin.backend()))
    with ws_connect(haproxy.port) as ws:
        for i in range(50):
            ws.send(f"message {i}")
            assert ws.recv() == f"message {i}"
        ws.send(b"\x00\x01binary")
        assert ws.recv() == b"\x00\x01binary"


def test_websocket_over_tls(
    ca: trustme.CA, tls_haproxy: HaproxyRunner, ws_origin: WsOrigin
) -> None:
    tls_haproxy.route(proxy_for("ws.portway.test", ws_origin.backend()))
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    sock = socket.create_connection(("127.0.0.1", tls_haproxy.tls_port), timeout=5)
    with connect("wss://ws.portway.test/", sock=sock, ssl=ctx, open_timeout=5) as ws:
        ws.send("over tls")
        assert ws.recv() == "over tls"
