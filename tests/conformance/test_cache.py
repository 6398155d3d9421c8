"""The HTTP cache and purge on every data plane (docs/caching.md), against a real
origin on loopback that counts its requests: what is stored, for how long, who is
served from it, and who may drop it."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from typing import Any

import pytest

from portway.cache.store import Purge
from portway.model import Backend, CacheKey, CacheSettings, PurgeSettings
from portway.model.purge_key import hash_key
from tests.conformance.conftest import Plane
from tests.dataplane.cache_origin import CacheOrigin, cache_origin, get
from tests.dataplane.conftest import proxy_for

__all__ = ["cache_origin"]  # the fixture
HOST = "cache.example.org"
PURGE_KEY = "purge-secret-0123456789-abcdefghijk"  # 32 or more characters, as the API asks
FOREIGN = PurgeSettings(allow_from=("192.0.2.0/24",), key_hash=hash_key(PURGE_KEY))
# nginx counts freshness in whole seconds: max-age=1 is stale within 2 s.
EXPIRY = 2.2


def _serve(plane: Plane, origin: CacheOrigin, request: pytest.FixtureRequest, **cache: Any) -> str:
    """A caching proxy of its own per case (no entry of another case can answer)."""
    pid = request.node.name
    purge = cache.pop("purge", PurgeSettings())
    backend = Backend(id="o", address="127.0.0.1", port=origin.port)
    settings = CacheSettings(enabled=True, **cache)
    plane.route(proxy_for(HOST, backend, pid=pid, cache=settings, purge=purge))
    return pid


@pytest.fixture
def cached(plane: Plane, cache_origin: CacheOrigin, request: pytest.FixtureRequest) -> Plane:
    _serve(plane, cache_origin, request)
    return plane


@pytest.mark.feature("cache_status_detail")
def test_a_second_request_is_a_hit_with_cache_status(
    cached: Plane, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/a", headers={"Cache-Control": "max-age=60"}, body=b"one")
    first = get(cached.port, "/a")
    second = get(cached.port, "/a")
    assert first[0] == second[0] == 200 and first[2] == second[2] == b"one"
    assert first[1]["cache-status"].startswith("portway; fwd=uri-miss; fwd-status=200")
    assert second[1]["cache-status"] == "portway; hit"
    assert cache_origin.count("/a") == 1


@pytest.mark.feature("cache")
def test_head_is_answered_from_a_stored_get(cached: Plane, cache_origin: CacheOrigin) -> None:
    cache_origin.add("/h", headers={"Cache-Control": "max-age=60"}, body=b"12345")
    get(cached.port, "/h")
    status, headers, body = get(cached.port, "/h", method="HEAD")
    assert (status, body, headers["cache-status"]) == (200, b"", "portway; hit")
    assert cache_origin.count("/h") == 1


@pytest.mark.feature("cache")
def test_an_entry_expires_after_its_max_age(cached: Plane, cache_origin: CacheOrigin) -> None:
    cache_origin.add("/e", headers={"Cache-Control": "max-age=1"})
    get(cached.port, "/e")
    assert get(cached.port, "/e")[1]["cache-status"] == "portway; hit"
    time.sleep(EXPIRY)
    status, headers, _ = get(cached.port, "/e")
    assert status == 200 and headers["cache-status"].startswith("portway; fwd=")
    assert cache_origin.count("/e") == 2


@pytest.mark.feature("cache")
@pytest.mark.parametrize(
    "headers",
    [
        {"Cache-Control": "no-store, max-age=60"},
        {"Cache-Control": "private, max-age=60"},
        {"Cache-Control": "max-age=60", "Set-Cookie": "sid=alice"},
    ],
    ids=["no-store", "private", "set-cookie"],
)
def test_what_a_shared_cache_must_not_store_goes_to_the_origin_every_time(
    cached: Plane, cache_origin: CacheOrigin, headers: dict[str, str]
) -> None:
    cache_origin.add("/n", headers=headers)
    for _ in range(3):
        status, got, _ = get(cached.port, "/n")
        assert status == 200 and got["cache-status"].startswith("portway; fwd=")
    assert cache_origin.count("/n") == 3


@pytest.mark.feature("cache")
def test_a_request_with_authorization_is_not_served_from_nor_stored_in_the_cache(
    cached: Plane, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/auth", headers={"Cache-Control": "max-age=60"}, body=b"alice's")
    auth = {"Authorization": "Bearer alice"}
    get(cached.port, "/auth", auth)
    get(cached.port, "/auth", auth)
    assert cache_origin.count("/auth") == 2
    get(cached.port, "/auth")  # stored for an anonymous request...
    # ...and still not handed to an authorized one (RFC 9111 §3.5).
    assert get(cached.port, "/auth", auth)[1]["cache-status"] == "portway; fwd=request"
    assert cache_origin.count("/auth") == 4


@pytest.mark.feature("cache_revalidation")
def test_a_stale_entry_is_revalidated_and_the_304_becomes_a_200(
    cached: Plane, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/r", headers={"Cache-Control": "max-age=1", "ETag": '"v1"'}, body=b"body")
    get(cached.port, "/r")
    time.sleep(EXPIRY)
    status, headers, body = get(cached.port, "/r")
    assert (status, body) == (200, b"body")
    assert headers["cache-status"] == "portway; fwd=stale; fwd-status=304"
    assert cache_origin.resources["/r"].requests[1].get("If-None-Match") == '"v1"'
    assert cache_origin.count("/r") == 2


@pytest.mark.feature("cache_collapsed")
def test_concurrent_misses_make_one_origin_request(
    cached: Plane, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/c", headers={"Cache-Control": "max-age=60"}, body=b"once", delay=1.0)
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: get(cached.port, "/c"), range(50)))
    assert all(r[0] == 200 and r[2] == b"once" for r in results)
    assert cache_origin.count("/c") == 1


@pytest.mark.feature("cache_auth_public")
def test_authorization_is_answered_from_an_entry_marked_public(
    cached: Plane, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/pub", headers={"Cache-Control": "public, max-age=60"})
    get(cached.port, "/pub")
    assert get(cached.port, "/pub", {"Authorization": "Bearer a"})[1]["cache-status"] == (
        "portway; hit"
    )
    assert cache_origin.count("/pub") == 1


@pytest.mark.feature("cache_heuristic")
def test_a_response_with_only_last_modified_is_stored(
    cached: Plane, cache_origin: CacheOrigin
) -> None:
    modified = formatdate(time.time() - 86400, usegmt=True)  # 10 %: 2.4 hours fresh
    cache_origin.add("/lm", headers={"Last-Modified": modified})
    get(cached.port, "/lm")
    assert get(cached.port, "/lm")[1]["cache-status"] == "portway; hit"
    assert cache_origin.count("/lm") == 1


@pytest.mark.feature("cache_invalidation")
def test_a_post_drops_the_stored_response_of_its_target(
    cached: Plane, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/p", headers={"Cache-Control": "max-age=60"})
    get(cached.port, "/p")
    get(cached.port, "/p", method="POST")
    assert get(cached.port, "/p")[1]["cache-status"].startswith("portway; fwd=uri-miss")
    assert cache_origin.count("/p") == 3


@pytest.mark.feature("cache_age")
def test_a_hit_carries_its_age(cached: Plane, cache_origin: CacheOrigin) -> None:
    cache_origin.add("/age", headers={"Cache-Control": "max-age=60"})
    get(cached.port, "/age")
    time.sleep(1.1)
    assert int(get(cached.port, "/age")[1]["age"]) >= 1


@pytest.mark.feature("purge")
def test_purge_is_refused_from_a_foreign_address_and_with_a_wrong_key(
    plane: Plane, cache_origin: CacheOrigin, request: pytest.FixtureRequest
) -> None:
    _serve(plane, cache_origin, request, purge=FOREIGN)
    cache_origin.add("/x", headers={"Cache-Control": "max-age=60"})
    get(plane.port, "/x")
    assert get(plane.port, "/x", method="PURGE")[0] == 403
    wrong = {"X-Purge-Key": "wrong-" + PURGE_KEY}
    assert get(plane.port, "/x", wrong, method="PURGE")[0] == 403
    shouted = {"X-Purge-Key": PURGE_KEY.upper()}  # the key is compared byte for byte
    assert get(plane.port, "/x", shouted, method="PURGE")[0] == 403
    stored = {"X-Purge-Key": FOREIGN.key_hash or ""}  # what the store keeps opens nothing
    assert get(plane.port, "/x", stored, method="PURGE")[0] == 403
    assert cache_origin.count("/x") == 1  # a refused PURGE never reaches the backend
    assert get(plane.port, "/x")[1]["cache-status"] == "portway; hit"


@pytest.mark.feature("purge_key")
def test_purge_with_the_key_drops_the_url(
    plane: Plane, cache_origin: CacheOrigin, request: pytest.FixtureRequest
) -> None:
    _serve(plane, cache_origin, request, purge=FOREIGN)
    cache_origin.add("/x", headers={"Cache-Control": "max-age=60"})
    get(plane.port, "/x")
    purged = get(plane.port, "/x", {"X-Purge-Key": PURGE_KEY}, method="PURGE")
    assert (purged[0], purged[2]) == (200, b'{"purged": 1}\n')
    purged = get(plane.port, "/x", {"X-Purge-Key": PURGE_KEY}, method="PURGE")
    assert (purged[0], purged[2]) == (404, b'{"purged": 0}\n')
    assert get(plane.port, "/x")[1]["cache-status"].startswith("portway; fwd=uri-miss")
    assert all(r.get("X-Purge-Key") is None for r in cache_origin.resources["/x"].requests)


@pytest.mark.feature("purge")
def test_purge_from_an_allowed_address_drops_the_url(
    plane: Plane, cache_origin: CacheOrigin, request: pytest.FixtureRequest
) -> None:
    _serve(plane, cache_origin, request, purge=PurgeSettings(allow_from=("127.0.0.0/8",)))
    cache_origin.add("/y", headers={"Cache-Control": "max-age=60"})
    get(plane.port, "/y?q=1")
    get(plane.port, "/y?q=2")
    assert get(plane.port, "/y?q=1", method="PURGE")[0] == 200
    assert get(plane.port, "/y?q=1")[1]["cache-status"].startswith("portway; fwd=uri-miss")
    assert get(plane.port, "/y?q=2")[1]["cache-status"] == "portway; hit"
    assert cache_origin.count("/y") == 3


@pytest.mark.feature("purge")
def test_the_apis_purge_drops_a_url_and_says_how_many_went(
    plane: Plane, cache_origin: CacheOrigin, request: pytest.FixtureRequest
) -> None:
    pid = _serve(plane, cache_origin, request)
    cache_origin.add("/z", headers={"Cache-Control": "max-age=60"})
    get(plane.port, "/z?a")
    get(plane.port, "/z")
    assert plane.purge(pid, Purge(urls=((None, b"/z?a"), (HOST.encode(), b"/z")))) == 2
    assert plane.purge(pid, Purge(urls=((None, b"/z?a"),))) == 0
    assert get(plane.port, "/z?a")[1]["cache-status"].startswith("portway; fwd=uri-miss")
    assert cache_origin.count("/z") == 3


@pytest.mark.feature("purge_partial")
def test_the_apis_purge_drops_a_prefix(
    plane: Plane, cache_origin: CacheOrigin, request: pytest.FixtureRequest
) -> None:
    pid = _serve(plane, cache_origin, request)
    cache_origin.add("/static/a", headers={"Cache-Control": "max-age=60"})
    get(plane.port, "/static/a")
    assert plane.purge(pid, Purge(prefixes=(b"/static/",))) == 1
    assert get(plane.port, "/static/a")[1]["cache-status"].startswith("portway; fwd=uri-miss")


@pytest.mark.feature("stale_if_error")
def test_stale_if_error_answers_an_origins_5xx_with_the_stale_entry(
    cached: Plane, cache_origin: CacheOrigin
) -> None:
    page = cache_origin.add(
        "/sie", headers={"Cache-Control": "max-age=1, stale-if-error=60"}, body=b"old"
    )
    get(cached.port, "/sie")
    time.sleep(EXPIRY)
    page.status = 503
    status, headers, body = get(cached.port, "/sie")
    assert (status, body) == (200, b"old")
    assert headers["cache-status"] == "portway; fwd=stale; fwd-status=503; detail=stale-if-error"
    assert cache_origin.count("/sie") == 2


@pytest.mark.feature("purge_variants")
def test_a_url_purge_drops_every_vary_variant(
    plane: Plane, cache_origin: CacheOrigin, request: pytest.FixtureRequest
) -> None:
    pid = _serve(plane, cache_origin, request)
    cache_origin.add("/v", headers={"Cache-Control": "max-age=60", "Vary": "Accept"})
    for accept in ("text/a", "text/b"):
        get(plane.port, "/v", {"Accept": accept})
    assert plane.purge(pid, Purge(urls=((None, b"/v"),))) == 2
    for accept in ("text/a", "text/b"):
        status = get(plane.port, "/v", {"Accept": accept})[1]["cache-status"]
        assert status.startswith("portway; fwd=")
    assert cache_origin.count("/v") == 4


@pytest.mark.feature("cache_key")
def test_the_key_holds_the_query_unless_the_tenant_says_otherwise_and_its_headers(
    plane: Plane, cache_origin: CacheOrigin, request: pytest.FixtureRequest
) -> None:
    cache_origin.add("/q", headers={"Cache-Control": "max-age=60"})
    _serve(plane, cache_origin, request, key=CacheKey(query=False, headers=("x-tenant",)))
    get(plane.port, "/q?a=1", {"X-Tenant": "one"})
    assert get(plane.port, "/q?a=2", {"X-Tenant": "one"})[1]["cache-status"] == "portway; hit"
    other = get(plane.port, "/q?a=1", {"X-Tenant": "two"})[1]["cache-status"]
    assert other.startswith("portway; fwd=uri-miss")
    assert get(plane.port, "/q?a=1")[1]["cache-status"].startswith("portway; fwd=uri-miss")
    assert cache_origin.count("/q") == 3


@pytest.mark.feature("cache")
def test_a_clients_own_validator_against_a_hit_gets_304(
    cached: Plane, cache_origin: CacheOrigin
) -> None:
    cache_origin.add("/etag", headers={"Cache-Control": "max-age=60", "ETag": '"e1"'})
    get(cached.port, "/etag")
    status, headers, body = get(cached.port, "/etag", {"If-None-Match": '"e1"'})
    assert (status, body, headers["etag"]) == (304, b"", '"e1"')
    assert headers["cache-status"] == "portway; hit"
    assert get(cached.port, "/etag", {"If-None-Match": '"other"'})[0] == 200
    assert cache_origin.count("/etag") == 1
