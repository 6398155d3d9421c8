"""nginx does not cache yet (docs/caching.md): a proxy with cache.enabled is served
without it and the problem says so, so the API never implies a cache that the node's
data plane does not run. (HAProxy's cache: test_haproxy_cache.py.)"""

from __future__ import annotations

from portway.drivers.nginx_config import render as nginx_render
from portway.drivers.nginx_options import NginxOptions
from portway.model import Backend, CacheSettings, Proxy
from portway.router import RouteTable, Snapshot

PROXY = Proxy(
    id="c0ffee",
    project="alpha",
    hostname="cache.alpha.example.org",
    backends=(Backend(id="b", address="10.0.0.5", port=80),),
    cache=CacheSettings(enabled=True),
)
SNAPSHOT = Snapshot(version=1, routes=RouteTable.build([PROXY]))


def test_nginx_serves_a_caching_proxy_and_reports_the_cache_not_applied() -> None:
    tree = nginx_render(SNAPSHOT, NginxOptions(control_socket="/tmp/i12cache-ctl.sock"))
    assert [(p.field, p.served) for p in tree.problems] == [("cache.enabled", True)]
    assert not any("proxy_cache" in text for text in tree.files.values())
