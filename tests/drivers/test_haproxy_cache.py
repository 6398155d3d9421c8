"""``cache.enabled`` on a real HAProxy: its small-object cache per proxy, with
``Cache-Status``, what it must never store, and ``PURGE`` answered without reaching the
backend; and the ``cache`` section the settings become (pure)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from portway.drivers import haproxy_cache
from portway.drivers.haproxy_config import render
from portway.drivers.haproxy_options import HaproxyOptions
from portway.model import Backend, CacheKey, CacheSettings, Limits, Proxy
from portway.router import RouteTable, Snapshot
from tests.dataplane.cache_origin import CacheOrigin, cache_origin, get
from tests.drivers.haproxy_runner import HAPROXY, HaproxyRunner

__all__ = ["cache_origin"]  # the fixture, imported so this module's tests can use it

HOST = "cache.example.org"
MIB = 1 << 20


def _proxy(port: int = 9, **cache: object) -> Proxy:
    backend = Backend(id="o", address="127.0.0.1", port=port)
    settings = CacheSettings(enabled=True, **cache)  # type: ignore[arg-type]
    return Proxy(id="c1", project="p", hostname=HOST, backends=(backend,), cache=settings)


def _render(*proxies: Proxy, conf: str = "/tmp/pw-hc/conf") -> tuple[str, list[tuple[str, bool]]]:
    options = HaproxyOptions(conf_dir=conf, run_dir="/tmp/pw-hc/run")
    config = render(Snapshot(version=1, routes=RouteTable.build(proxies)), options)
    return config.files["haproxy.cfg"], [(p.field, p.served) for p in config.problems]


# -- the section --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "lines"),
    [
        ({}, ("total-max-size 64", "max-object-size 1048576", "max-age 86400")),
        ({"max_bytes": MIB}, ("total-max-size 1", "max-object-size 524288")),
        ({"default_ttl": 30}, ("max-age 30",)),
    ],
)
def test_the_cache_section_follows_the_proxys_settings(
    settings: dict[str, object], lines: tuple[str, ...]
) -> None:
    proxy = _proxy(**settings)
    text, problems = _render(proxy)
    section = text[text.index(f"cache {haproxy_cache.cache_name(proxy)}\n") :]
    for line in (*lines, "process-vary on"):
        assert f"    {line}\n" in section
    assert problems == []
    assert f"http-request cache-use {haproxy_cache.cache_name(proxy)}\n" in text
    assert haproxy_cache.total_mib(_proxy(max_bytes=5000 * MIB)) == 4095  # HAProxy's most


@pytest.mark.parametrize(
    ("settings", "field", "cached"),
    [
        ({"key": CacheKey(query=False)}, "cache.key.query", False),
        ({"key": CacheKey(headers=("accept-language",))}, "cache.key.headers", False),
        ({"max_bytes": 1000}, "cache.max_bytes", True),  # 1 MiB
        ({"max_bytes": 2000 * MIB}, "cache.max_bytes", False),  # past the node's 1024 MiB
        ({"default_ttl": 0.4}, "cache.default_ttl", True),  # 1 s
    ],
)
def test_what_haproxy_cannot_do_as_asked_is_reported(
    settings: dict[str, object], field: str, cached: bool
) -> None:
    text, problems = _render(_proxy(**settings))
    assert problems == [(field, True)]  # served, with or without a cache
    assert ("cache-use" in text) == cached


def test_without_a_default_ttl_only_an_explicit_lifetime_is_stored() -> None:
    text, _ = _render(_proxy())
    assert "acl pw_lifetime res.fhdr(cache-control) -m reg -i '(^|[ ,])(s-maxage|max-age)='" in text
    assert "if !{ res.hdr(set-cookie) -m found } pw_lifetime\n" in text
    text, _ = _render(_proxy(default_ttl=30))
    assert "pw_lifetime" not in text and "if !{ res.hdr(set-cookie) -m found }\n" in text


def test_a_cache_with_limits_passes_haproxy_check(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    limited = Proxy(
        id="l1",
        project="p",
        hostname="l.example.org",
        cache=CacheSettings(enabled=True, default_ttl=5),
        limits=Limits(rate=5, deny=("10.0.0.0/8",)),
    )
    assert _render(_proxy(), limited, conf=str(conf))[1] == []
    options = HaproxyOptions(conf_dir=str(conf), run_dir=str(tmp_path))
    config = render(Snapshot(version=1, routes=RouteTable.build([_proxy(), limited])), options)
    for path, content in config.files.items():
        (conf / path).parent.mkdir(parents=True, exist_ok=True)
        (conf / path).write_text(content)
    check = subprocess.run([HAPROXY, "-c", "-f", str(conf / "haproxy.cfg")], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr


# -- a real HAProxy -----------------------------------------------------------------------


def test_a_fresh_response_is_served_from_the_cache(
    haproxy: HaproxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/f", headers={"Cache-Control": "max-age=60"}, body=b"fresh")
    haproxy.route(_proxy(cache_origin.port))
    assert haproxy.driver.problems == ()
    status, headers, body = get(haproxy.port, "/f")
    assert (status, body, headers["cache-status"]) == (200, b"fresh", "portway; fwd=uri-miss")
    status, headers, body = get(haproxy.port, "/f")
    assert (status, body, headers["cache-status"]) == (200, b"fresh", "portway; hit")
    assert "age" in headers
    status, headers, _ = get(haproxy.port, "/f", method="HEAD")
    assert (status, headers["cache-status"]) == (200, "portway; hit")
    assert get(haproxy.port, "/f?other")[1]["cache-status"] == "portway; fwd=uri-miss"
    assert cache_origin.count("/f") == 2  # /f once, /f?other once


@pytest.mark.parametrize(
    "headers",
    [
        {"Cache-Control": "max-age=60", "Set-Cookie": "session=alice"},  # one client's cookie
        {"ETag": '"v1"'},  # a validator alone: Portway revalidates it, HAProxy could not
        {"Cache-Control": "private, max-age=60"},
        {"Cache-Control": "no-store"},
    ],
)
def test_what_must_not_be_served_from_the_cache_is_not_stored(
    haproxy: HaproxyRunner, cache_origin: CacheOrigin, headers: dict[str, str]
) -> None:
    cache_origin.add("/n", headers=headers)
    haproxy.route(_proxy(cache_origin.port))
    for _ in range(2):
        assert get(haproxy.port, "/n")[1]["cache-status"] == "portway; fwd=uri-miss"
    assert cache_origin.count("/n") == 2


def test_a_default_ttl_stores_a_response_with_a_validator_alone(
    haproxy: HaproxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/v", headers={"ETag": '"v1"'})
    haproxy.route(_proxy(cache_origin.port, default_ttl=30))
    assert [get(haproxy.port, "/v")[1]["cache-status"] for _ in range(2)] == [
        "portway; fwd=uri-miss",
        "portway; hit",
    ]
    assert cache_origin.count("/v") == 1


def test_what_bypasses_the_cache_says_why(
    haproxy: HaproxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/f", headers={"Cache-Control": "max-age=60"})
    haproxy.route(_proxy(cache_origin.port))
    get(haproxy.port, "/f")
    authorized = get(haproxy.port, "/f", headers={"Authorization": "Basic eDp5"})
    assert authorized[1]["cache-status"] == "portway; fwd=request"
    assert get(haproxy.port, "/f", method="POST")[1]["cache-status"] == "portway; fwd=bypass"
    assert cache_origin.count("/f") == 3


def test_purge_is_answered_501_and_never_reaches_the_backend(
    haproxy: HaproxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/f", headers={"Cache-Control": "max-age=60"})
    haproxy.route(_proxy(cache_origin.port))
    get(haproxy.port, "/f")
    status, headers, body = get(haproxy.port, "/f", method="PURGE")
    assert status == 501 and headers["content-type"] == "application/json"
    assert "cannot purge" in json.loads(body)["error"]
    assert cache_origin.count("/f") == 1
    assert get(haproxy.port, "/f")[1]["cache-status"] == "portway; hit"  # nothing purged


def test_the_caches_together_stay_within_the_nodes_cache_memory() -> None:
    """HAProxy takes each cache's memory at load: past the node's budget, a proxy (in
    id order) is served without a cache and reported, whatever its tenant asked."""
    proxies = [
        Proxy(
            id=f"c{i}",
            project="p",
            hostname=f"c{i}.example.org",
            cache=CacheSettings(enabled=True, max_bytes=size * MIB),
        )
        for i, size in enumerate((64, 64, 30))
    ]
    options = HaproxyOptions(conf_dir="/tmp/pw-hc/conf", run_dir="/tmp/pw-hc/run", cache_memory=100)
    config = render(Snapshot(version=1, routes=RouteTable.build(proxies)), options)
    text = config.files["haproxy.cfg"]
    cached = [p.id for p in proxies if f"cache {haproxy_cache.cache_name(p)}\n" in text]
    assert cached == ["c0", "c2"]  # 64 + 30 of 100; c1's 64 would not fit
    assert [(p.proxy_id, p.field, p.served) for p in config.problems] == [
        ("c1", "cache.max_bytes", True)
    ]
    assert "--haproxy-cache-memory 100 MiB" in config.problems[0].message
    none = HaproxyOptions(conf_dir="/tmp/pw-hc/conf", run_dir="/tmp/pw-hc/run", cache_memory=0)
    text = render(Snapshot(version=1, routes=RouteTable.build(proxies)), none).files["haproxy.cfg"]
    assert "cache-use" not in text
