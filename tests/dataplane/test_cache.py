"""The built-in data plane's HTTP cache against a real origin that sets each header
(RFC 9111 as a shared cache; docs/caching.md)."""

from __future__ import annotations

import dataclasses
import http.client
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from typing import Any

import pytest

from portway.model import Backend, CacheKey, CacheSettings, PurgeSettings
from portway.model.purge_key import hash_key
from portway.model.quota import CacheLimits
from portway.observability.metrics import merge, render
from tests.dataplane.cache_origin import CacheOrigin, cache_origin, get
from tests.dataplane.conftest import ProxyRunner, proxy_for
from tests.dataplane.wsorigin import WsOrigin, ws_connect

__all__ = ["cache_origin"]  # the fixture, imported so this module's tests can use it
HOST = "cache.example.org"
PURGE_KEY = "purge-secret-0123456789"


def _serve(
    make_proxy: Callable[..., ProxyRunner], origin: CacheOrigin, **cache: Any
) -> ProxyRunner:
    runner = make_proxy()
    purge = cache.pop("purge", PurgeSettings())
    settings = CacheSettings(enabled=True, **cache)
    backend = Backend(id="o", address="127.0.0.1", port=origin.port)
    runner.route(proxy_for(HOST, backend, cache=settings, purge=purge))
    return runner


@pytest.fixture
def cached(make_proxy: Callable[..., ProxyRunner], cache_origin: CacheOrigin) -> ProxyRunner:
    return _serve(make_proxy, cache_origin)


def test_a_fresh_response_is_served_from_the_cache(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/a", headers={"Cache-Control": "max-age=60"}, body=b"one")
    first = get(cached.port, "/a")
    second = get(cached.port, "/a")
    assert first[0] == second[0] == 200 and first[2] == second[2] == b"one"
    assert first[1]["cache-status"] == "portway; fwd=uri-miss; fwd-status=200; stored"
    assert second[1]["cache-status"] == "portway; hit"
    assert "age" in second[1]
    assert cache_origin.count("/a") == 1


def test_head_is_served_from_a_cached_get(cached: ProxyRunner, cache_origin: CacheOrigin) -> None:
    cache_origin.add("/h", headers={"Cache-Control": "max-age=60"}, body=b"12345")
    get(cached.port, "/h")
    status, headers, body = get(cached.port, "/h", method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == "5"
    assert headers["cache-status"] == "portway; hit"
    assert cache_origin.count("/h") == 1


def test_an_expired_entry_is_revalidated_and_a_304_becomes_a_200(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/r", headers={"Cache-Control": "max-age=0", "ETag": '"v1"'}, body=b"body")
    get(cached.port, "/r")
    status, headers, body = get(cached.port, "/r")
    assert (status, body) == (200, b"body")
    assert headers["cache-status"] == "portway; fwd=stale; fwd-status=304"
    revalidation = cache_origin.resources["/r"].requests[1]
    assert revalidation.get("If-None-Match") == '"v1"'
    # The refreshed entry stays stored (max-age=0: revalidated again, never refetched).
    assert get(cached.port, "/r")[1]["cache-status"] == "portway; fwd=stale; fwd-status=304"


def test_the_query_is_in_the_key_unless_the_tenant_says_otherwise(
    make_proxy: Callable[..., ProxyRunner], cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/q", headers={"Cache-Control": "max-age=60"})
    with_query = _serve(make_proxy, cache_origin)
    get(with_query.port, "/q?a=1")
    get(with_query.port, "/q?a=2")
    assert cache_origin.count("/q") == 2
    without = _serve(make_proxy, cache_origin, key=CacheKey(query=False))
    get(without.port, "/q?a=1")
    assert get(without.port, "/q?a=2")[1]["cache-status"] == "portway; hit"
    assert cache_origin.count("/q") == 3


def test_vary_keeps_one_variant_per_header_value(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/v", headers={"Cache-Control": "max-age=60", "Vary": "Accept-Language"})
    get(cached.port, "/v", {"Accept-Language": "en"})
    de = get(cached.port, "/v", {"Accept-Language": "de"})
    assert de[1]["cache-status"].startswith("portway; fwd=vary-miss")
    assert get(cached.port, "/v", {"Accept-Language": "en"})[1]["cache-status"] == "portway; hit"
    assert get(cached.port, "/v", {"Accept-Language": "de"})[1]["cache-status"] == "portway; hit"
    assert cache_origin.count("/v") == 2


@pytest.mark.parametrize(
    "headers",
    [
        {"Cache-Control": "no-store, max-age=60"},
        {"Cache-Control": "private, max-age=60"},
        {"Cache-Control": "max-age=60", "Set-Cookie": "sid=alice"},
        {"Cache-Control": "max-age=60", "Vary": "*"},
    ],
    ids=["no-store", "private", "set-cookie", "vary-star"],
)
def test_responses_a_shared_cache_must_not_store_go_to_the_origin_every_time(
    cached: ProxyRunner, cache_origin: CacheOrigin, headers: dict[str, str]
) -> None:
    cache_origin.add("/n", headers=headers)
    for _ in range(3):
        status, got, _ = get(cached.port, "/n")
        assert status == 200 and "stored" not in got["cache-status"]
    assert cache_origin.count("/n") == 3


def test_authorization_with_public_is_cached(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/pub", headers={"Cache-Control": "public, max-age=60"})
    auth = {"Authorization": "Bearer alice"}
    get(cached.port, "/pub")
    assert get(cached.port, "/pub", auth)[1]["cache-status"] == "portway; hit"


def test_stale_while_revalidate_serves_the_stale_answer(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add(
        "/swr", headers={"Cache-Control": "max-age=1, stale-while-revalidate=30"}, body=b"old"
    )
    get(cached.port, "/swr")
    time.sleep(2.1)
    # The refreshed answer is fresh for long: Date has whole seconds, so max-age=1 could
    # make even a new entry stale at once.
    resource = cache_origin.resources["/swr"]
    resource.body, resource.headers = b"new", {"Cache-Control": "max-age=60"}
    status, headers, body = get(cached.port, "/swr")
    assert (status, body) == (200, b"old")
    assert headers["cache-status"] == "portway; hit; detail=stale-while-revalidate"
    assert int(headers["age"]) >= 2
    # The stale answer started one refresh in the background; its answer is stored.
    deadline = time.monotonic() + 5
    while cache_origin.count("/swr") < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    status, headers, body = get(cached.port, "/swr")
    assert (status, body, headers["cache-status"]) == (200, b"new", "portway; hit")
    assert cache_origin.count("/swr") == 2


def test_must_revalidate_is_never_served_stale(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add(
        "/mr",
        headers={"Cache-Control": "max-age=1, must-revalidate, stale-while-revalidate=30"},
    )
    get(cached.port, "/mr")
    time.sleep(2.1)
    assert get(cached.port, "/mr")[1]["cache-status"].startswith("portway; fwd=stale")
    assert cache_origin.count("/mr") == 2


def test_expires_and_heuristic_freshness(cached: ProxyRunner, cache_origin: CacheOrigin) -> None:
    now = time.time()
    cache_origin.add(
        "/exp",
        headers={
            "Date": formatdate(now, usegmt=True),
            "Expires": formatdate(now + 60, usegmt=True),
        },
    )
    cache_origin.add(
        "/lm",
        headers={
            "Date": formatdate(now, usegmt=True),
            "Last-Modified": formatdate(now - 86400, usegmt=True),
        },
    )
    cache_origin.add("/none")  # no freshness, no validator: nothing to guess from
    for path in ("/exp", "/lm", "/none"):
        get(cached.port, path)
    assert get(cached.port, "/exp")[1]["cache-status"] == "portway; hit"
    assert get(cached.port, "/lm")[1]["cache-status"] == "portway; hit"
    assert get(cached.port, "/none")[1]["cache-status"] != "portway; hit"


def test_default_ttl_gives_silent_responses_a_lifetime(
    make_proxy: Callable[..., ProxyRunner], cache_origin: CacheOrigin
) -> None:
    runner = _serve(make_proxy, cache_origin, default_ttl=60.0)
    cache_origin.add("/quiet")
    get(runner.port, "/quiet")
    assert get(runner.port, "/quiet")[1]["cache-status"] == "portway; hit"


def test_a_post_invalidates_the_stored_response(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/p", headers={"Cache-Control": "max-age=60"})
    get(cached.port, "/p")
    get(cached.port, "/p", method="POST")
    assert get(cached.port, "/p")[1]["cache-status"].startswith("portway; fwd=uri-miss")


def test_concurrent_misses_make_one_origin_request(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/c", headers={"Cache-Control": "max-age=60"}, body=b"once", delay=0.5)
    with ThreadPoolExecutor(100) as pool:
        results = list(pool.map(lambda _: get(cached.port, "/c"), range(100)))
    assert all(r[0] == 200 and r[2] == b"once" for r in results)
    assert cache_origin.count("/c") == 1


def test_the_cache_bound_evicts_least_recently_used_entries(
    make_proxy: Callable[..., ProxyRunner], cache_origin: CacheOrigin
) -> None:
    runner = _serve(make_proxy, cache_origin, max_bytes=10_000)
    for name in ("a", "b", "c"):
        cache_origin.add(f"/e{name}", headers={"Cache-Control": "max-age=60"}, body=b"x" * 3000)
    get(runner.port, "/ea")
    get(runner.port, "/eb")
    get(runner.port, "/ea")  # a is now the most recently used
    get(runner.port, "/ec")  # over 10 000 bytes: b goes
    assert get(runner.port, "/ea")[1]["cache-status"] == "portway; hit"
    assert get(runner.port, "/eb")[1]["cache-status"].startswith("portway; fwd=uri-miss")
    counters = runner.on_loop(lambda: runner.dp.plans.cache_counters["p"])
    assert counters.evictions >= 1 and counters.stored_bytes <= 10_000


def test_a_50_mib_body_streams_to_the_client_while_it_is_stored(
    make_proxy: Callable[..., ProxyRunner], cache_origin: CacheOrigin
) -> None:
    runner = _serve(make_proxy, cache_origin, max_bytes=64 << 20)
    gate = threading.Event()
    cache_origin.add("/big", headers={"Cache-Control": "max-age=60"}, stream=50, gate=gate)
    before = _rss()
    with socket.create_connection(("127.0.0.1", runner.port), timeout=10) as sock:
        sock.sendall(f"GET /big HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        got = len(received.partition(b"\r\n\r\n")[2])
        while got < (1 << 20):  # the first MiB arrives while the origin holds the rest
            got += len(sock.recv(1 << 20))
        assert not gate.is_set()
        gate.set()
        total = 50 << 20
        while got < total:
            part = sock.recv(1 << 20)
            assert part
            got += len(part)
    time.sleep(0.2)
    grown = _rss() - before
    print(f"resident memory grew by {grown / 2**20:.1f} MiB while 50 MiB were cached")
    # The body is held once (the stored chunks are the ones that went to the client),
    # never joined or buffered whole on top of that.
    assert grown < total + (24 << 20)
    status, headers, body = get(runner.port, "/big")
    assert status == 200 and len(body) == total
    assert headers["cache-status"] == "portway; hit"
    assert cache_origin.count("/big") == 1
    stored = runner.on_loop(lambda: runner.dp.plans.cache_counters["p"].stored_bytes)
    assert total <= stored < total + 4096  # the body once, plus the head


def _rss() -> int:
    """This process's resident memory in bytes (the data plane runs in a thread of it)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_body_over_the_bound_is_forwarded_whole_and_not_stored(
    make_proxy: Callable[..., ProxyRunner], cache_origin: CacheOrigin
) -> None:
    runner = _serve(make_proxy, cache_origin, max_bytes=1 << 20)
    cache_origin.add("/huge", headers={"Cache-Control": "max-age=60"}, stream=3)
    for _ in range(2):
        status, _, body = get(runner.port, "/huge")
        assert status == 200 and len(body) == 3 << 20
    assert cache_origin.count("/huge") == 2


def test_purge_method_from_an_allowed_address_drops_the_url(
    make_proxy: Callable[..., ProxyRunner], cache_origin: CacheOrigin
) -> None:
    runner = _serve(make_proxy, cache_origin, purge=PurgeSettings(allow_from=("127.0.0.0/8",)))
    cache_origin.add("/x", headers={"Cache-Control": "max-age=60"})
    get(runner.port, "/x")
    status, _, body = get(runner.port, "/x", method="PURGE")
    assert status == 200 and body == b'{"purged": 1}\n'
    assert get(runner.port, "/x", method="PURGE")[0] == 404
    assert get(runner.port, "/x")[1]["cache-status"].startswith("portway; fwd=uri-miss")
    assert all("PURGE" not in str(r) for r in cache_origin.resources["/x"].requests)


def test_purge_method_is_refused_from_a_foreign_address_and_without_the_key(
    make_proxy: Callable[..., ProxyRunner], cache_origin: CacheOrigin
) -> None:
    purge = PurgeSettings(allow_from=("192.0.2.0/24",), key_hash=hash_key(PURGE_KEY))
    runner = _serve(make_proxy, cache_origin, purge=purge)
    cache_origin.add("/x", headers={"Cache-Control": "max-age=60"})
    get(runner.port, "/x")
    assert get(runner.port, "/x", method="PURGE")[0] == 403
    assert get(runner.port, "/x", {"X-Purge-Key": "wrong-" + PURGE_KEY}, method="PURGE")[0] == 403
    # Whoever read the stored hash cannot use it as the key, nor the key's first part.
    for wrong in (purge.key_hash or "", PURGE_KEY[:-1], PURGE_KEY + "x"):
        assert get(runner.port, "/x", {"X-Purge-Key": wrong}, method="PURGE")[0] == 403
    assert cache_origin.count("/x") == 1  # a refused PURGE never reaches the backend
    assert get(runner.port, "/x")[1]["cache-status"] == "portway; hit"
    assert get(runner.port, "/x", {"X-Purge-Key": PURGE_KEY}, method="PURGE")[0] == 200
    assert get(runner.port, "/x")[1]["cache-status"].startswith("portway; fwd=uri-miss")


def test_a_proxy_without_the_cache_sends_no_cache_status(
    make_proxy: Callable[..., ProxyRunner], cache_origin: CacheOrigin
) -> None:
    runner = make_proxy()
    backend = Backend(id="o", address="127.0.0.1", port=cache_origin.port)
    runner.route(proxy_for(HOST, backend))
    cache_origin.add("/off", headers={"Cache-Control": "max-age=60"})
    get(runner.port, "/off")
    assert "cache-status" not in get(runner.port, "/off")[1]
    assert cache_origin.count("/off") == 2


def test_hits_misses_and_stored_bytes_reach_the_metrics_page(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/m", headers={"Cache-Control": "max-age=60"}, body=b"x" * 1000)
    get(cached.port, "/m")
    get(cached.port, "/m")
    get(cached.port, "/m")
    export = cached.on_loop(cached.dp.metrics.export)
    text = render(merge([export, export]), {})  # two workers' worth
    assert 'portway_cache_hits_total{project="p"} 4' in text
    assert 'portway_cache_misses_total{project="p"} 2' in text
    stored = int(text.split('portway_cache_stored_bytes{project="p"} ')[1].split()[0])
    assert 2000 < stored < 4000


def test_a_clients_own_validator_against_a_hit_gets_304(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/etag", headers={"Cache-Control": "max-age=60", "ETag": '"e1"'})
    get(cached.port, "/etag")
    status, headers, body = get(cached.port, "/etag", {"If-None-Match": 'W/"e1"'})
    assert (status, body, headers["etag"]) == (304, b"", '"e1"')
    assert headers["cache-status"] == "portway; hit"
    assert get(cached.port, "/etag", {"If-None-Match": '"other"'})[0] == 200
    assert cache_origin.count("/etag") == 1


def test_stale_if_error_answers_a_5xx_with_the_stale_entry(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    resource = cache_origin.add(
        "/sie", headers={"Cache-Control": "max-age=1, stale-if-error=60"}, body=b"good"
    )
    get(cached.port, "/sie")
    time.sleep(2.1)
    resource.status, resource.body = 503, b"origin down " * 1000
    status, headers, body = get(cached.port, "/sie")
    assert (status, body) == (200, b"good")
    assert headers["cache-status"] == "portway; fwd=stale; fwd-status=503; detail=stale-if-error"
    # The 5xx's body was read to its end: the next exchange on the connection is intact.
    resource.status, resource.body = 200, b"back"
    status, headers, body = get(cached.port, "/sie")
    assert (status, headers.get("cache-status"), body[:80]) == (
        200,
        "portway; fwd=stale; fwd-status=200; stored",
        b"back",
    )


def test_without_stale_if_error_the_5xx_goes_to_the_client(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    resource = cache_origin.add("/e5", headers={"Cache-Control": "max-age=1"}, body=b"good")
    get(cached.port, "/e5")
    time.sleep(2.1)
    resource.status = 503
    assert get(cached.port, "/e5")[0] == 503


def test_a_body_cut_short_by_the_origin_is_never_served_from_the_cache(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    resource = cache_origin.add(
        "/cut", headers={"Cache-Control": "max-age=60"}, body=b"y" * 100_000, cut=50_000
    )
    with pytest.raises(http.client.IncompleteRead):
        get(cached.port, "/cut")
    resource.cut = 0
    status, headers, body = get(cached.port, "/cut")
    assert (status, len(body)) == (200, 100_000)
    assert headers["cache-status"].startswith("portway; fwd=uri-miss")
    assert get(cached.port, "/cut")[1]["cache-status"] == "portway; hit"


def test_an_open_websocket_does_not_hold_its_url_for_other_requests(
    make_proxy: Callable[..., ProxyRunner], ws_origin: WsOrigin
) -> None:
    runner = make_proxy()
    proxy = proxy_for(HOST, ws_origin.backend(), cache=CacheSettings(enabled=True))
    runner.route(proxy)
    with ws_connect(runner.port, "/", host=HOST) as ws:
        ws.send("ping")
        assert ws.recv(timeout=5) == "ping"
        started = time.monotonic()
        status, headers, _ = get(runner.port, "/")  # a plain GET of the tunnel's URL
        # Had the handshake opened a fill, this GET would wait on it until its timeout.
        assert time.monotonic() - started < 0.5 and status != 504
        assert headers["cache-status"].startswith("portway; fwd=uri-miss")


def test_waiters_on_a_response_that_is_not_stored_go_to_the_origin_at_once(
    cached: ProxyRunner, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/priv", headers={"Cache-Control": "private"}, body=b"mine", delay=0.3)
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda _: get(cached.port, "/priv"), range(10)))
    assert [(r[0], r[2]) for r in results] == [(200, b"mine")] * 10
    assert cache_origin.count("/priv") == 10


def test_a_projects_cache_quota_bounds_its_proxies_together_and_a_lower_one_trims(
    make_proxy: Callable[..., ProxyRunner], cache_origin: CacheOrigin
) -> None:
    runner = make_proxy()
    backend = Backend(id="o", address="127.0.0.1", port=cache_origin.port)
    settings = CacheSettings(enabled=True, max_bytes=100_000)
    proxies = [
        proxy_for(HOST, backend, prefix="/one", cache=settings),
        proxy_for(HOST, backend, prefix="/two", cache=settings),
    ]

    def publish(limit: int) -> None:
        snapshot = dataclasses.replace(
            runner.snapshot(proxies), cache_limits=CacheLimits(own={"p": limit})
        )
        assert runner.apply(snapshot)

    def stored() -> int:
        return int(runner.on_loop(lambda: runner.dp.plans.cache_counters["p"].stored_bytes))

    publish(20_000)
    for prefix in ("/one", "/two"):
        for n in range(4):
            path = f"{prefix}/{n}"
            cache_origin.add(path, headers={"Cache-Control": "max-age=60"}, body=b"x" * 4000)
            assert get(runner.port, path)[0] == 200
    # 8 bodies of 4000 bytes: each proxy's own bound (100 000) holds them all, the
    # project's 20 000 does not.
    assert 12_000 < stored() <= 20_000
    assert get(runner.port, "/two/3")[1]["cache-status"] == "portway; hit"
    publish(9_000)  # the quota lowered: the caches are trimmed at once
    assert 0 < stored() <= 9_000
    assert get(runner.port, "/two/3")[1]["cache-status"] == "portway; hit"  # most recent
