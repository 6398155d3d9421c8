"""RFC 9111's rules as pure functions: values in, decisions out (no sockets, no clock)."""

from __future__ import annotations

from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portway.cache import policy
from portway.cache.policy import Response, parse_cache_control

NOW = 1_800_000_000.0


def _response(cc: str = "", status: int = 200, **kw: object) -> Response:
    directives = parse_cache_control([cc.encode()]) if cc else policy.NONE
    return Response(status=status, directives=directives, **kw)  # type: ignore[arg-type]


def _storable(response: Response, *, authorized: bool = False, method: bytes = b"GET") -> bool:
    return policy.storable(method, policy.NONE, response, authorized=authorized, default_ttl=None)


def test_cache_control_parsing_lower_cases_and_unquotes() -> None:
    parsed = parse_cache_control([b'Max-Age=60, no-cache="Set-Cookie, X-A"', b"public"])
    assert parsed == {"max-age": "60", "no-cache": "Set-Cookie, X-A", "public": None}


def test_conflicting_lifetimes_read_as_stale() -> None:
    assert parse_cache_control([b"max-age=60, max-age=3600"])["max-age"] == "0"


@pytest.mark.parametrize("value", ["-1", "1.5", "abc", "", "٣"])
def test_invalid_delta_seconds_are_ignored(value: str) -> None:
    assert policy.delta_seconds(value) is None


def test_huge_delta_seconds_are_clamped() -> None:
    assert policy.delta_seconds("9" * 40) == policy.MAX_DELTA


@given(st.binary(max_size=200))
def test_parsing_never_raises(raw: bytes) -> None:
    parse_cache_control([raw])


@pytest.mark.parametrize(
    ("cc", "status", "expected"),
    [
        ("max-age=60", 200, True),
        ("no-store, max-age=60", 200, False),
        ("private, max-age=60", 200, False),
        ("max-age=60", 206, False),  # no range support
        ("max-age=60", 302, True),  # not heuristic, but explicit
        ("", 302, False),
        ("public", 200, True),
        ("", 500, False),
        ("max-age=60", 500, False),
    ],
)
def test_what_a_shared_cache_stores(cc: str, status: int, expected: bool) -> None:
    assert _storable(_response(cc, status)) is expected


def test_only_get_is_stored() -> None:
    assert not _storable(_response("max-age=60"), method=b"POST")
    assert not _storable(_response("max-age=60"), method=b"HEAD")


def test_request_no_store_prevents_storing() -> None:
    request = parse_cache_control([b"no-store"])
    assert not policy.storable(
        b"GET", request, _response("max-age=60"), authorized=False, default_ttl=None
    )


@pytest.mark.parametrize(
    ("cc", "expected"),
    [
        ("max-age=60", False),
        ("public, max-age=60", True),
        ("s-maxage=60", True),
        ("max-age=60, must-revalidate", True),
    ],
)
def test_authorization_needs_the_responses_permission(cc: str, expected: bool) -> None:
    assert _storable(_response(cc), authorized=True) is expected


def test_set_cookie_and_vary_star_are_not_stored() -> None:
    assert not _storable(_response("max-age=60", set_cookie=True))
    assert not _storable(_response("max-age=60", vary=("*",)))


def test_a_silent_200_is_stored_only_with_something_to_go_on() -> None:
    assert not _storable(_response())
    assert _storable(_response(etag=b'"x"'))  # stored, revalidated on use
    assert policy.storable(b"GET", policy.NONE, _response(), authorized=False, default_ttl=5)


def test_lifetime_prefers_s_maxage_then_max_age_then_expires() -> None:
    assert policy.lifetime(_response("max-age=10, s-maxage=20"), None) == 20
    assert policy.lifetime(_response("max-age=10"), None) == 10
    expires = formatdate(NOW + 30, usegmt=True).encode()
    assert policy.lifetime(_response(date=NOW, expires=expires), None) == 30
    assert policy.lifetime(_response(date=NOW, expires=b"0"), None) == 0  # invalid: past


def test_default_ttl_comes_before_the_heuristic() -> None:
    assert policy.lifetime(_response(date=NOW, last_modified=NOW - 1000), 7.0) == 7.0


def test_heuristic_is_a_tenth_since_last_modified_capped_and_only_for_listed_statuses() -> None:
    assert policy.lifetime(_response(date=NOW, last_modified=NOW - 1000), None) == 100
    assert policy.lifetime(_response(date=NOW, last_modified=NOW - 10**8), None) == 86400
    assert policy.lifetime(_response(status=302, date=NOW, last_modified=NOW - 1000), None) == 0


def test_age_is_corrected_for_the_origins_age_and_the_round_trip() -> None:
    response = _response(date=NOW - 5, age=10)
    assert policy.initial_age(response, NOW - 2, NOW) == 12  # 10 + 2 s in flight > 5
    kept = policy.freshness(_response("max-age=60"), None, NOW, NOW)
    assert kept.age(NOW + 30) == 30


def _kept(cc: str, age: float = 0.0) -> policy.Freshness:
    return policy.freshness(_response(cc), None, NOW - age, NOW - age)


def test_fresh_is_a_hit_and_stale_is_revalidated() -> None:
    assert policy.serve(_kept("max-age=60", 10), policy.NONE, NOW) == policy.HIT
    assert policy.serve(_kept("max-age=60", 70), policy.NONE, NOW) == policy.REVALIDATE


def test_no_cache_revalidates_even_when_fresh() -> None:
    assert policy.serve(_kept("no-cache, max-age=60"), policy.NONE, NOW) == policy.REVALIDATE
    request = policy.request_directives(b"no-cache", None)
    assert policy.serve(_kept("max-age=60"), request, NOW) == policy.REVALIDATE
    pragma = policy.request_directives(None, b"no-cache")
    assert policy.serve(_kept("max-age=60"), pragma, NOW) == policy.REVALIDATE


def test_request_max_age_and_min_fresh_narrow_freshness() -> None:
    kept = _kept("max-age=60", 20)
    assert policy.serve(kept, parse_cache_control([b"max-age=10"]), NOW) == policy.REVALIDATE
    assert policy.serve(kept, parse_cache_control([b"min-fresh=50"]), NOW) == policy.REVALIDATE
    assert policy.serve(kept, parse_cache_control([b"max-age=30"]), NOW) == policy.HIT


def test_stale_while_revalidate_window() -> None:
    cc = "max-age=10, stale-while-revalidate=30"
    assert policy.serve(_kept(cc, 20), policy.NONE, NOW) == policy.STALE_WHILE_REVALIDATE
    assert policy.serve(_kept(cc, 50), policy.NONE, NOW) == policy.REVALIDATE


@pytest.mark.parametrize("strict", ["must-revalidate", "proxy-revalidate", "s-maxage=10"])
def test_never_stale_past_revalidation_directives(strict: str) -> None:
    kept = _kept(f"max-age=10, {strict}, stale-while-revalidate=30, stale-if-error=30", 20)
    assert policy.serve(kept, policy.NONE, NOW) == policy.REVALIDATE
    assert not policy.usable_on_error(kept, NOW)


def test_stale_if_error_window() -> None:
    assert policy.usable_on_error(_kept("max-age=10, stale-if-error=30", 20), NOW)
    assert not policy.usable_on_error(_kept("max-age=10, stale-if-error=30", 50), NOW)
    assert not policy.usable_on_error(_kept("max-age=10", 20), NOW)


def test_http_dates_in_all_three_forms() -> None:
    for text in (
        b"Sun, 06 Nov 1994 08:49:37 GMT",
        b"Sunday, 06-Nov-94 08:49:37 GMT",
        b"Sun Nov  6 08:49:37 1994",
    ):
        assert policy.http_date(text) == 784111777.0
    assert policy.http_date(b"yesterday") is None
