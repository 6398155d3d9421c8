"""A path rewrite HAProxy is not given, refused rather than forwarded with the client's
path, through a real HAProxy driven by Portway. (TLS members and ``privacy``, on every
data plane: tests/conformance.)"""

from __future__ import annotations

import http.client

from portway.model import Rewrite
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
