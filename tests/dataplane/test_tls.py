"""The HTTPS listener over real loopback TLS with trustme certificates: SNI choice,
protocol versions, forwarded scheme, redirect, HSTS, 421 and Location rewriting."""

from __future__ import annotations

import dataclasses
import http.server
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from portway.model import Certificate, TlsSettings
from portway.tls.policy import TLS12_CIPHERS
from tests.dataplane import tls_origin
from tests.dataplane.conftest import FAST, Origin, ProxyRunner, proxy_for, raw, status_of
from tests.dataplane.tls_origin import certificate, default_pair
from tests.http_server import TestHTTPServer

ca = tls_origin.ca


@pytest.fixture(scope="module")
def certs(ca: trustme.CA) -> dict[str, Certificate]:
    return {
        "exact": certificate(ca.issue_cert("a.example.org"), "exact"),
        "wild": certificate(ca.issue_cert("*.example.org"), "wild"),
    }


@pytest.fixture
def tls_proxy(
    ca: trustme.CA, certs: dict[str, Certificate], origin: Origin, tmp_path: Path
) -> Iterator[ProxyRunner]:
    runner = ProxyRunner(FAST, default_certificate=default_pair(ca, tmp_path))
    tls = TlsSettings(certificate="wild", hsts=True)
    proxies = [
        proxy_for("a.example.org", origin.backend()),
        dataclasses.replace(proxy_for("b.example.org", origin.backend()), tls=tls),
        dataclasses.replace(
            proxy_for("plain.example.org", origin.backend()),
            tls=TlsSettings(redirect_http=True),
        ),
    ]
    runner.publish(proxies, list(certs.values()))
    yield runner
    runner.stop()


def client_context(ca: trustme.CA, **kw: Any) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.check_hostname = False  # the tests look at the SAN themselves
    for name, value in kw.items():
        setattr(ctx, name, value)
    return ctx


def tls_exchange(
    port: int, sni: str | None, request: bytes, ctx: ssl.SSLContext
) -> tuple[bytes, ssl.SSLSocket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    tls = ctx.wrap_socket(sock, server_hostname=sni)
    tls.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data or len(data) < _expected_length(data):
        part = tls.recv(65536)
        if not part:
            break
        data += part
    return data, tls


def _expected_length(data: bytes) -> int:
    head, _, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(head) + 4 + int(line.split(b":")[1])
    return len(data)


def san(sock: ssl.SSLSocket) -> set[str]:
    cert = sock.getpeercert()
    assert cert is not None
    return {value for kind, value in cert["subjectAltName"] if kind == "DNS"}


def get(host: str) -> bytes:
    return b"GET /p?q=1 HTTP/1.1\r\nHost: " + host.encode() + b"\r\nConnection: close\r\n\r\n"


def header(response: bytes, name: bytes) -> bytes | None:
    for line in response.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


@pytest.mark.parametrize(
    ("sni", "expected"),
    [
        ("a.example.org", {"a.example.org"}),
        ("x.example.org", {"*.example.org"}),
        ("other.test", {"*.portway.test", "portway.test"}),
        (None, {"*.portway.test", "portway.test"}),
    ],
)
def test_sni_picks_exact_then_wildcard_then_default(
    tls_proxy: ProxyRunner, ca: trustme.CA, sni: str | None, expected: set[str]
) -> None:
    _, sock = tls_exchange(tls_proxy.tls_port, sni, get("a.example.org"), client_context(ca))
    with sock:
        assert san(sock) == expected
        assert sock.selected_alpn_protocol() in (None, "http/1.1")


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_tls_1_1_is_refused(tls_proxy: ProxyRunner, ca: trustme.CA) -> None:
    ctx = client_context(ca)
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_exchange(tls_proxy.tls_port, "a.example.org", get("a.example.org"), ctx)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_are_accepted(
    tls_proxy: ProxyRunner, ca: trustme.CA, version: ssl.TLSVersion
) -> None:
    ctx = client_context(ca, minimum_version=version, maximum_version=version)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    response, sock = tls_exchange(tls_proxy.tls_port, "a.example.org", get("a.example.org"), ctx)
    with sock:
        assert status_of(response) == 200
        assert sock.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]
        assert sock.selected_alpn_protocol() == "http/1.1"  # never h2
        cipher = sock.cipher()
        assert cipher is not None
        if version is ssl.TLSVersion.TLSv1_2:
            assert cipher[0] in TLS12_CIPHERS.split(":")


def test_backend_sees_https_scheme_and_tls_port(
    tls_proxy: ProxyRunner, ca: trustme.CA, origin: Origin
) -> None:
    response, sock = tls_exchange(
        tls_proxy.tls_port, "a.example.org", get("a.example.org"), client_context(ca)
    )
    sock.close()
    assert status_of(response) == 200
    seen = origin.seen[-1]
    assert seen.header("X-Forwarded-Proto") == "https"
    assert seen.header("X-Forwarded-Port") == str(tls_proxy.tls_port)
    assert "proto=https" in (seen.header("Forwarded") or "")
    plain, _ = raw(tls_proxy.port, get("a.example.org"))
    assert status_of(plain) == 200 and origin.seen[-1].header("X-Forwarded-Proto") == "http"


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /p?q=1 HTTP/1.1\r\nHost: Plain.Example.org:8080\r\nConnection: close\r\n\r\n",
        b"POST /p?q=1 HTTP/1.1\r\nHost: plain.example.org\r\nContent-Length: 5\r\n\r\nhello",
        b"DELETE /p?q=1 HTTP/1.1\r\nHost: plain.example.org\r\nConnection: close\r\n\r\n",
    ],
)
def test_redirect_http_sends_every_method_to_https(
    tls_proxy: ProxyRunner, origin: Origin, request_bytes: bytes
) -> None:
    response, _ = raw(tls_proxy.port, request_bytes)
    assert status_of(response) == 301
    location = f"https://plain.example.org:{tls_proxy.tls_port}/p?q=1".encode()
    assert header(response, b"Location") == location
    assert origin.seen == []


def test_redirect_does_not_apply_on_https(tls_proxy: ProxyRunner, ca: trustme.CA) -> None:
    request = get("plain.example.org")
    response, sock = tls_exchange(
        tls_proxy.tls_port, "plain.example.org", request, client_context(ca)
    )
    sock.close()
    assert status_of(response) == 200


def test_hsts_header_only_on_https_for_proxies_that_ask(
    tls_proxy: ProxyRunner, ca: trustme.CA
) -> None:
    ctx = client_context(ca)
    response, sock = tls_exchange(tls_proxy.tls_port, "b.example.org", get("b.example.org"), ctx)
    sock.close()
    assert header(response, b"Strict-Transport-Security") == b"max-age=31536000"
    response, sock = tls_exchange(tls_proxy.tls_port, "a.example.org", get("a.example.org"), ctx)
    sock.close()
    assert header(response, b"Strict-Transport-Security") is None
    plain, _ = raw(tls_proxy.port, get("b.example.org"))
    assert status_of(plain) == 200 and header(plain, b"Strict-Transport-Security") is None


def test_host_not_covered_by_the_sni_certificate_gets_421(
    tls_proxy: ProxyRunner, ca: trustme.CA, origin: Origin
) -> None:
    ctx = client_context(ca)
    response, sock = tls_exchange(tls_proxy.tls_port, "a.example.org", get("b.example.org"), ctx)
    sock.close()
    assert status_of(response) == 421
    assert origin.seen == []
    # The wildcard certificate chosen for x.example.org covers b.example.org too.
    response, sock = tls_exchange(tls_proxy.tls_port, "x.example.org", get("b.example.org"), ctx)
    sock.close()
    assert status_of(response) == 200
    # Without SNI there is nothing to mismatch.
    response, sock = tls_exchange(tls_proxy.tls_port, None, get("b.example.org"), ctx)
    sock.close()
    assert status_of(response) == 200


class _Redirecting(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", f"http://{self.headers['Host']}/login?next=/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_backend_location_is_rewritten_to_https(ca: trustme.CA, tls_proxy: ProxyRunner) -> None:
    server = TestHTTPServer(("127.0.0.1", 0), _Redirecting)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        from portway.model import Backend

        backend = Backend(id="r", address="127.0.0.1", port=server.server_address[1])
        tls_proxy.publish([proxy_for("a.example.org", backend)], [])
        ctx = client_context(ca)
        response, sock = tls_exchange(
            tls_proxy.tls_port, "a.example.org", get("a.example.org"), ctx
        )
        sock.close()
        assert status_of(response) == 302
        assert header(response, b"Location") == b"https://a.example.org/login?next=/"
        plain, _ = raw(tls_proxy.port, get("a.example.org"))
        assert header(plain, b"Location") == b"http://a.example.org/login?next=/"
    finally:
        server.shutdown()
        server.server_close()


def test_certificate_swap_takes_effect_without_restart(
    tls_proxy: ProxyRunner, ca: trustme.CA, certs: dict[str, Certificate], origin: Origin
) -> None:
    ctx = client_context(ca)
    _, sock = tls_exchange(tls_proxy.tls_port, "c.example.org", get("c.example.org"), ctx)
    with sock:
        assert san(sock) == {"*.example.org"}
    tls_proxy.publish([proxy_for("c.example.org", origin.backend())], [])
    _, sock = tls_exchange(tls_proxy.tls_port, "c.example.org", get("c.example.org"), ctx)
    with sock:
        assert san(sock) == {"*.portway.test", "portway.test"}
    fresh = certificate(ca.issue_cert("c.example.org"), "fresh")
    tls_proxy.publish([proxy_for("c.example.org", origin.backend())], [fresh])
    response, sock = tls_exchange(tls_proxy.tls_port, "c.example.org", get("c.example.org"), ctx)
    with sock:
        assert san(sock) == {"c.example.org"} and status_of(response) == 200
