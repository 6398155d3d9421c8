"""What a proxy asks of its backends, through a real HAProxy driven by Portway: TLS
members (``ssl verify none``), the client's address withheld (``privacy``), and a path
rewrite HAProxy is not given, refused rather than forwarded with the client's path."""

from __future__ import annotations

import http.client
from collections.abc import Callable

from portway.model import Privacy, Rewrite
from tests.dataplane.conftest import Origin, proxy_for
from tests.drivers.haproxy_runner import HaproxyRunner


def get(
    port: int, host: str, path: str = "/", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Host": host, **(headers or {})})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, body


def test_haproxy_reaches_a_tls_member_over_tls(
    haproxy: HaproxyRunner, make_tls_origin: Callable[..., Origin], origin: Origin
) -> None:
    secure = make_tls_origin("secure")
    haproxy.route(
        proxy_for("app.example.org", secure.backend(tls=True)),
        proxy_for("plain.example.org", origin.backend()),
    )
    assert get(haproxy.port, "app.example.org", "/x") == (200, b"secure /x 0")
    assert [s.path for s in secure.seen] == ["/x"]
    assert get(haproxy.port, "plain.example.org")[0] == 200  # plain members stay plain


def test_privacy_off_sends_no_client_address_and_passes_none_of_the_clients(
    haproxy: HaproxyRunner, origin: Origin
) -> None:
    haproxy.route(
        proxy_for("off.example.org", origin.backend(), privacy=Privacy(forwarded_for="off")),
        proxy_for("on.example.org", origin.backend()),
    )
    forged = {"X-Forwarded-For": "6.6.6.6", "Forwarded": "for=6.6.6.6", "X-Real-IP": "6.6.6.6"}
    assert get(haproxy.port, "off.example.org", "/", forged)[0] == 200
    seen = origin.seen[-1]
    assert seen.header("X-Forwarded-For") is None
    assert seen.header("Forwarded") is None
    assert seen.header("X-Real-IP") is None
    assert seen.header("X-Forwarded-Proto") == "http"  # the rest of the hygiene stays
    assert get(haproxy.port, "on.example.org", "/", forged)[0] == 200
    assert origin.seen[-1].header("X-Forwarded-For") == "127.0.0.1"
    assert origin.seen[-1].header("X-Real-IP") is None


def test_a_proxy_with_a_path_rewrite_is_left_out_and_reported(
    haproxy: HaproxyRunner, origin: Origin
) -> None:
    rewritten = proxy_for(
        "rw.example.org",
        origin.backend(),
        prefix="/health",
        rewrite=Rewrite(backend_prefix="/configuration/health"),
    )
    haproxy.route(rewritten, proxy_for("app.example.org", origin.backend()))
    assert get(haproxy.port, "app.example.org")[0] == 200
    assert get(haproxy.port, "rw.example.org", "/health")[0] == 404
    assert [(p.field, p.served) for p in haproxy.driver.problems] == [
        ("rewrite.backend_prefix", False)
    ]
