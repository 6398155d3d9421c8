"""Client limits on the external planes. nginx applies them (``limit_req``, ``deny``)
with Portway's pages, from two loopback source addresses (HAProxy's:
test_haproxy_limits.py); both refuse them behind ``--trusted-proxy``, leaving such a
proxy out and reporting it. The node-wide flags stop the start with one line on nginx,
and on HAProxy behind ``--trusted-proxy``."""

from __future__ import annotations

import dataclasses
import http.client
from collections.abc import Callable
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


def status_from(port: int, source: str, host: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_nginx_limits_a_client_over_its_rate_and_not_another(
    nginx: NginxRunner, origin: Origin
) -> None:
    limited = proxy_for("app.example.org", origin.backend(), limits=Limits(rate=0.5, burst=2))
    nginx.route(limited)
    assert nginx.driver.problems == ()
    codes = [status_from(nginx.port, "127.0.0.2", "app.example.org")[0] for _ in range(3)]
    assert codes == [200, 200, 429]
    _, headers, body = status_from(nginx.port, "127.0.0.2", "app.example.org")
    assert headers["Retry-After"] == "5" and b"429 Too Many Requests" in body
    assert status_from(nginx.port, "127.0.0.3", "app.example.org")[0] == 200


def test_nginx_denies_a_banned_range_with_portways_page(nginx: NginxRunner, origin: Origin) -> None:
    banned = Limits(deny=("127.0.0.2/32",))
    nginx.route(proxy_for("app.example.org", origin.backend(), limits=banned))
    status, _, body = status_from(nginx.port, "127.0.0.2", "app.example.org")
    assert status == 403 and b"403 Forbidden" in body and b"portway" in body
    assert status_from(nginx.port, "127.0.0.3", "app.example.org")[0] == 200


def test_nginx_refuses_client_limits_behind_a_trusted_proxy(
    make_nginx: Callable[..., NginxRunner], origin: Origin
) -> None:
    nginx = make_nginx(trusted_proxies=("127.0.0.0/8",))
    nginx.route(*_proxies(origin))
    assert status(nginx.port, "app.example.org") == 200
    for host, _, _ in LIMITED:
        assert status(nginx.port, host) == 404
    assert sorted((p.field, p.served) for p in nginx.driver.problems) == [
        ("limits.deny", False),
        ("limits.rate", False),
    ]


def test_nginx_rounds_a_rate_it_cannot_write_and_says_so(
    nginx: NginxRunner, origin: Origin
) -> None:
    odd = proxy_for("app.example.org", origin.backend(), limits=Limits(rate=1 / 7))
    nginx.route(odd)
    assert [(p.field, p.served) for p in nginx.driver.problems] == [("limits.rate", True)]
    assert "9r/m" in nginx.driver.problems[0].message
    assert status(nginx.port, "app.example.org") == 200


def test_haproxy_refuses_client_limits_behind_a_trusted_proxy(
    make_haproxy: Callable[..., HaproxyRunner], origin: Origin
) -> None:
    haproxy = make_haproxy(trusted_proxies=("127.0.0.0/8",))
    haproxy.route(*_proxies(origin))
    assert status(haproxy.port, "app.example.org") == 200
    for host, _, _ in LIMITED:
        assert status(haproxy.port, host) == 404
    assert sorted((p.field, p.served) for p in haproxy.driver.problems) == [
        ("limits.deny", False),
        ("limits.rate", False),
    ]


NODE_WIDE = [
    ({"rate_limit": 5.0}, "--rate-limit"),
    ({"deny_clients": ("192.0.2.0/24",)}, "--deny-client"),
]
TRUSTING = {"trusted_proxies": ("127.0.0.0/8",)}


@pytest.mark.parametrize(
    ("kind", "change", "flag"),
    [("nginx", change, flag) for change, flag in NODE_WIDE]
    + [("haproxy", {**change, **TRUSTING}, flag) for change, flag in NODE_WIDE],
)
def test_node_wide_limits_an_external_plane_cannot_apply_stop_the_start(
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


def test_haproxy_takes_the_node_wide_limits_into_its_options(tmp_path: Path) -> None:
    change = {
        "rate_limit": 5.0,
        "rate_burst": 9,
        "rate_limit_clients": 50,
        "deny_clients": ("192.0.2.0/24",),
    }
    config = ServeConfig(
        data_dir=tmp_path,
        http=Listen(host="127.0.0.1", port=0),
        api=Listen(host="127.0.0.1", port=0),
        plane_kind="haproxy",
        dataplane=dataclasses.replace(DataPlaneSettings(), **change),  # type: ignore[arg-type]
    )
    plane = _data_plane(config, None, config.backend_policy)
    options = plane.driver.options  # type: ignore[attr-defined]
    assert (options.rate_limit, options.rate_burst, options.rate_limit_clients) == (5.0, 9, 50)
    assert options.deny_clients == ("192.0.2.0/24",)
