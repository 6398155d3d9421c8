"""TLS backends through a real nginx driven by Portway: the hostname as SNI, and a proxy
that mixes TLS and plain backends left out. (Reaching a TLS backend, on every data
plane: tests/conformance/test_upstream_tls.py.)"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Callable

from portway.model import Backend
from tests.dataplane.conftest import Origin, proxy_for
from tests.drivers.conftest import NginxRunner


def get(port: int, host: str, path: str = "/") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Host": host})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


def test_nginx_sends_a_hostname_backend_its_name_as_sni(
    nginx: NginxRunner, make_tls_origin: Callable[..., Origin]
) -> None:
    named = make_tls_origin("named", names=("localhost",))
    names: list[str | None] = []
    context: ssl.SSLContext = named.server.context  # type: ignore[attr-defined]
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    backend = Backend(id="named", address="localhost", port=named.port, tls=True)
    nginx.route(proxy_for("app.example.org", backend))
    assert get(nginx.port, "app.example.org") == (200, b"named / 0")
    assert set(names) == {"localhost"}


def test_nginx_leaves_out_a_proxy_mixing_tls_and_plain_backends(
    nginx: NginxRunner, make_tls_origin: Callable[..., Origin], origin: Origin
) -> None:
    secure = make_tls_origin("secure")
    mixed = proxy_for("mixed.example.org", secure.backend(tls=True), origin.backend())
    nginx.route(mixed, proxy_for("app.example.org", origin.backend()))
    assert get(nginx.port, "app.example.org")[0] == 200  # the rest is served
    assert get(nginx.port, "mixed.example.org")[0] == 404
    assert [(p.field, p.served) for p in nginx.driver.problems] == [("backends.tls", False)]
