"""Client limits on nginx and HAProxy: a proxy with a rate or banned ranges is left out
and reported (not served without them), the others are served; the node-wide flags stop
the start with one line."""

from __future__ import annotations

import dataclasses
import http.client
from pathlib import Path

import pytest

from portway.dataplane import DataPlaneSettings
from portway.errors import ConfigError
from portway.model import Limits, Proxy
from portway.runtime.config import Listen, ServeConfig
from portway.runtime.control import _data_plane
from tests.dataplane.conftest import Origin, proxy_for
from tests.drivers.conftest import NginxRunner
from tests.drivers.haproxy_runner import HaproxyRunner

LIMITED = (
    ("rate.example.org", Limits(rate=5), "limits.rate"),
    ("deny.example.org", Limits(deny=("192.0.2.0/24",)), "limits.deny"),
)


def status(port: int, host: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _proxies(origin: Origin) -> list[Proxy]:
    limited = [proxy_for(h, origin.backend(), limits=lim) for h, lim, _ in LIMITED]
    return [*limited, proxy_for("app.example.org", origin.backend())]


def test_nginx_leaves_out_and_reports_proxies_with_client_limits(
    nginx: NginxRunner, origin: Origin
) -> None:
    nginx.route(*_proxies(origin))
    assert status(nginx.port, "app.example.org") == 200
    for host, _, _ in LIMITED:
        assert status(nginx.port, host) == 404
    assert sorted((p.field, p.served) for p in nginx.driver.problems) == [
        ("limits.deny", False),
        ("limits.rate", False),
    ]


def test_haproxy_leaves_out_and_reports_proxies_with_client_limits(
    haproxy: HaproxyRunner, origin: Origin
) -> None:
    haproxy.route(*_proxies(origin))
    assert status(haproxy.port, "app.example.org") == 200
    for host, _, _ in LIMITED:
        assert status(haproxy.port, host) == 404
    assert sorted((p.field, p.served) for p in haproxy.driver.problems) == [
        ("limits.deny", False),
        ("limits.rate", False),
    ]


@pytest.mark.parametrize("kind", ["nginx", "haproxy"])
@pytest.mark.parametrize(
    ("change", "flag"),
    [({"rate_limit": 5.0}, "--rate-limit"), ({"deny_clients": ("192.0.2.0/24",)}, "--deny-client")],
)
def test_node_wide_limits_with_an_external_plane_stop_the_start(
    tmp_path: Path, kind: str, change: dict[str, object], flag: str
) -> None:
    config = ServeConfig(
        data_dir=tmp_path,
        http=Listen(host="127.0.0.1", port=0),
        api=Listen(host="127.0.0.1", port=0),
        plane_kind=kind,
        dataplane=dataclasses.replace(DataPlaneSettings(), **change),  # type: ignore[arg-type]
    )
    with pytest.raises(ConfigError, match=flag):
        _data_plane(config, None, config.backend_policy)
