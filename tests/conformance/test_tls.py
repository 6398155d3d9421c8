"""HTTPS on every data plane: the project's certificate per SNI, the default one
otherwise, redirect to HTTPS and HSTS."""

from __future__ import annotations

import dataclasses
import socket
import ssl

import pytest
import trustme

from portway.model import TlsSettings
from tests.conformance.client import get
from tests.conformance.conftest import Plane
from tests.dataplane.conftest import Origin, proxy_for
from tests.dataplane.tls_origin import certificate

DEFAULT = ["*.portway.test", "portway.test"]


def served_names(
    ca: trustme.CA, port: int, sni: str, request: bytes = b""
) -> tuple[list[str], bytes]:
    """The names of the certificate served for ``sni``, and the answer to ``request``."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.check_hostname = False  # the cases look at the names themselves
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    with sock, ctx.wrap_socket(sock, server_hostname=sni) as tls:
        cert = tls.getpeercert()
        assert cert is not None
        names = [str(v) for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        data = b""
        if request:
            tls.sendall(request)
            while chunk := tls.recv(65536):
                data += chunk
    return names, data


@pytest.mark.feature("sni")
def test_certificate_per_sni_and_the_default_otherwise(
    plane: Plane, ca: trustme.CA, origin: Origin
) -> None:
    certs = [
        certificate(ca.issue_cert("a.example.org"), "exact"),
        certificate(ca.issue_cert("*.example.org"), "wild"),
    ]
    plane.publish(
        [
            dataclasses.replace(
                proxy_for("a.example.org", origin.backend()), tls=TlsSettings(certificate="exact")
            ),
            dataclasses.replace(
                proxy_for("*.example.org", origin.backend()), tls=TlsSettings(certificate="wild")
            ),
            proxy_for("c.other.org", origin.backend()),
        ],
        certs,
    )
    request = b"GET /s HTTP/1.1\r\nHost: a.example.org\r\nConnection: close\r\n\r\n"
    names, response = served_names(ca, plane.tls_port, "a.example.org", request)
    assert names == ["a.example.org"]
    assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"one /s 0")
    assert origin.seen[-1].header("X-Forwarded-Proto") == "https"
    assert served_names(ca, plane.tls_port, "b.example.org")[0] == ["*.example.org"]
    assert served_names(ca, plane.tls_port, "c.other.org")[0] == DEFAULT
    assert served_names(ca, plane.tls_port, "nobody.example.com")[0] == DEFAULT


@pytest.mark.feature("redirect_hsts")
def test_redirect_to_https_and_hsts_only_on_https(
    plane: Plane, ca: trustme.CA, origin: Origin
) -> None:
    tls = TlsSettings(redirect_http=True, hsts=True)
    plane.route(dataclasses.replace(proxy_for("r.portway.test", origin.backend()), tls=tls))
    status, _, response = get(plane.port, "r.portway.test:8080", "/p?q=1")
    assert status == 301
    assert response.getheader("Location") == f"https://r.portway.test:{plane.tls_port}/p?q=1"
    assert response.getheader("Strict-Transport-Security") is None  # never on plain HTTP
    request = b"GET /x HTTP/1.1\r\nHost: r.portway.test\r\nConnection: close\r\n\r\n"
    _, data = served_names(ca, plane.tls_port, "r.portway.test", request)
    head = data.split(b"\r\n\r\n", 1)[0].lower()
    assert head.startswith(b"http/1.1 200")
    assert b"\r\nstrict-transport-security: max-age=31536000" in head
    assert [s.path for s in origin.seen] == ["/x"]
