"""HAProxy does not cache yet (docs/caching.md): a proxy with cache.enabled is served
without it and the problem says so, so the API never implies a cache that the node's
data plane does not run. nginx caches: tests/drivers/test_nginx_cache.py."""

from __future__ import annotations

from portway.drivers.haproxy_config import render as haproxy_render
from portway.drivers.haproxy_options import HaproxyOptions
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
HAPROXY_OPTIONS = HaproxyOptions(conf_dir="/tmp/i12cache-h/conf", run_dir="/tmp/i12cache-h/run")


def test_haproxy_serves_a_caching_proxy_and_reports_the_cache_not_applied() -> None:
    config = haproxy_render(SNAPSHOT, HAPROXY_OPTIONS, None)
    assert [(p.field, p.served) for p in config.problems] == [("cache.enabled", True)]
    assert "cache " not in config.files["haproxy.cfg"]
