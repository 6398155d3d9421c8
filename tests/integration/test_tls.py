"""HTTPS end to end: ``portway serve`` makes its local CA and default certificate on first
start and serves HTTPS at once; a certificate uploaded through the API and attached to a
proxy is served without a restart (in-process data plane and worker processes)."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.integration.harness import Backend, Portway, create_project_and_proxy


def _tls_get(pw: Portway, sni: str, host: str, ctx: ssl.SSLContext) -> tuple[bytes, set[str]]:
    """One request over TLS; returns the raw response and the served certificate's SAN."""
    raw = socket.create_connection(("127.0.0.1", pw.https_port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname=sni) as tls:
        cert = tls.getpeercert()
        assert cert is not None
        names = {v for k, v in cert["subjectAltName"] if k == "DNS"}
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while part := tls.recv(65536):
            data += part
    return data, names


def test_first_start_makes_the_ca_and_serves_https_at_once(portway: Portway) -> None:
    for name in ("ca.pem", "ca-key.pem", "default.pem", "default-key.pem"):
        assert (portway.data_dir / name).exists(), name
    assert (portway.data_dir / "default-key.pem").stat().st_mode & 0o077 == 0
    ctx = ssl.create_default_context(cafile=str(portway.data_dir / "ca.pem"))  # verifies name
    response, names = _tls_get(portway, "anything.portway.test", "anything.portway.test", ctx)
    assert names == {"*.portway.test", "portway.test"}
    assert response.startswith(b"HTTP/1.1 404 ")  # no such proxy, but TLS works


@pytest.fixture(params=[0, 2], ids=["in-process", "workers"])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Portway]:
    pw = Portway(tmp_path / "data", workers=request.param)
    pw.start()
    yield pw
    pw.stop()


def _wait_for_names(
    pw: Portway, sni: str, ctx: ssl.SSLContext, names: set[str], timeout: float = 10
) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        response, served = _tls_get(pw, sni, sni, ctx)
        if served == names:
            return response
        assert time.monotonic() < deadline, f"still serving {served}"
        time.sleep(0.02)


def test_uploaded_certificate_is_served_without_restart(
    served: Portway, backends: list[Backend]
) -> None:
    pw = served
    ca = trustme.CA()
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.load_verify_locations(cafile=str(pw.data_dir / "ca.pem"))
    ctx.check_hostname = False
    proxy = create_project_and_proxy(pw, "alpha", "shop.alpha.test", [backends[0].port])
    _wait_for_names(pw, "shop.alpha.test", ctx, {"*.portway.test", "portway.test"})

    leaf = ca.issue_cert("shop.alpha.test")
    body = {
        "certificate": {
            "name": "shop",
            "chain": "".join(b.bytes().decode() for b in leaf.cert_chain_pems),
            "key": leaf.private_key_pem.bytes().decode(),
        }
    }
    r = pw.api("POST", "/v1/alpha/certificates", json=body)
    assert r.status_code == 201, r.text
    cert_id = r.json()["certificate"]["id"]
    tls = {"certificate": cert_id, "redirect_http": True, "hsts": True}
    r = pw.api("PATCH", f"/v1/alpha/proxies/{proxy['id']}", json={"proxy": {"tls": tls}})
    assert r.status_code == 200, r.text

    response = _wait_for_names(pw, "shop.alpha.test", ctx, {"shop.alpha.test"})
    assert response.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nStrict-Transport-Security: max-age=31536000\r\n" in response
    assert backends[0].seen[-1]["headers"]["x-forwarded-proto"] == "https"
    plain = pw.get("shop.alpha.test", "/x?y=1", follow_redirects=False)
    assert plain.status_code == 301
    assert plain.headers["location"] == f"https://shop.alpha.test:{pw.https_port}/x?y=1"

    r = pw.api("DELETE", f"/v1/alpha/certificates/{cert_id}")
    assert r.status_code == 409, r.text
