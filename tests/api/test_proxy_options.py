"""Per-proxy timeouts, limits, consistent-hash key and health-check settings over the API."""

from __future__ import annotations

from typing import Any

import pytest
from tests.api.conftest import Api, assert_error

BASE = {"hostname": "opts.alpha.example.org"}

NO_RATE = {"rate": None, "burst": None, "deny": []}  # limits beside max_body_bytes


def _create(api: Api, **fields: Any) -> Any:
    return api.client.post(
        "/v1/alpha/proxies", json={"proxy": {**BASE, **fields}}, headers=api.member
    )


def test_options_round_trip_and_patch(api: Api) -> None:
    created = _create(
        api,
        algorithm="consistent_hash",
        hash_key="header:X-User",
        timeouts={"connect": 1.5, "first_byte": 30, "total": 120},
        limits={"max_body_bytes": 1048576},
        health_check={"path": "/health", "expected_codes": "2xx"},
    )
    assert created.status_code == 201, created.text
    proxy = created.json()["proxy"]
    assert proxy["hash_key"] == "header:x-user"
    assert proxy["timeouts"] == {
        "connect": 1.5,
        "first_byte": 30,
        "idle": 60.0,
        "total": 120,
        "websocket_idle": 3600.0,
    }
    assert proxy["limits"] == {"max_body_bytes": 1048576, **NO_RATE}
    patched = api.client.patch(
        f"/v1/alpha/proxies/{proxy['id']}",
        json={"proxy": {"limits": {"max_body_bytes": None}, "hash_key": "cookie:sid"}},
        headers=api.member,
    )
    assert patched.status_code == 200, patched.text
    shown = api.client.get(f"/v1/alpha/proxies/{proxy['id']}", headers=api.reader).json()["proxy"]
    assert shown["limits"] == {"max_body_bytes": None, **NO_RATE}
    assert shown["hash_key"] == "cookie:sid"
    assert shown["timeouts"]["connect"] == 1.5


def test_defaults_when_options_are_omitted(api: Api) -> None:
    proxy = _create(api).json()["proxy"]
    assert proxy["timeouts"]["websocket_idle"] == 3600.0
    assert proxy["limits"] == {"max_body_bytes": None, **NO_RATE}
    assert proxy["hash_key"] is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"timeouts": {"connect": 0}}, "timeouts.connect"),
        ({"timeouts": {"idle": -1}}, "timeouts.idle"),
        ({"limits": {"max_body_bytes": -5}}, "limits.max_body_bytes"),
        ({"limits": {"rate": 0}}, "limits.rate"),
        ({"limits": {"rate": 2_000_000}}, "limits.rate"),
        ({"limits": {"rate": 5, "burst": 0}}, "limits.burst"),
        ({"limits": {"burst": 5}}, "limits.burst"),
        ({"limits": {"deny": ["10.0.0.0/33"]}}, "limits.deny"),
        ({"limits": {"deny": ["10.0.0.0/8\r\nX: 1"]}}, "limits.deny"),
        ({"limits": {"deny": ["example.org"]}}, "limits.deny"),
        ({"limits": {"deny": [" 10.0.0.1"]}}, "limits.deny"),
        ({"limits": {"deny": ["10.0.0.1"] * 101}}, "limits.deny"),
        ({"hash_key": "query:x"}, "hash_key"),
        ({"hash_key": "header:bad name"}, "hash_key"),
        ({"health_check": {"expected_codes": "700"}}, "health_check.expected_codes"),
        ({"health_check": {"type": "udp"}}, "health_check.type"),
        ({"rewrite": {"backend_prefix": "relative"}}, "rewrite.backend_prefix"),
        ({"rewrite": {"backend_prefix": "/a b"}}, "rewrite.backend_prefix"),
        ({"rewrite": {"backend_prefix": "/a/../etc"}}, "rewrite.backend_prefix"),
        ({"rewrite": {"backend_prefix": "/a\r\nX-Evil: 1"}}, "rewrite.backend_prefix"),
        ({"rewrite": {"backend_prefix": "/trailing/"}}, "rewrite.backend_prefix"),
    ],
)
def test_bad_options_are_422_naming_the_field(api: Api, fields: dict[str, Any], field: str) -> None:
    assert_error(_create(api, **fields), 422, field)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"timeouts": {"connect": "fast"}}, "timeouts.connect"),
        ({"timeouts": {"colour": 1}}, "timeouts.colour"),
        ({"limits": {"max_body_bytes": "1m"}}, "limits.max_body_bytes"),
        ({"limits": {"rate": "5"}}, "limits.rate"),
        ({"limits": {"deny": "10.0.0.0/8"}}, "limits.deny"),
        ({"limits": {"deny": [10]}}, "limits.deny[0]"),
    ],
)
def test_wrongly_typed_options_are_400(api: Api, fields: dict[str, Any], field: str) -> None:
    assert_error(_create(api, **fields), 400, field)


def test_client_limits_round_trip(api: Api) -> None:
    limits = {"rate": 2.5, "burst": 10, "deny": ["192.0.2.0/24", "2001:db8::/32"]}
    proxy = _create(api, limits=limits).json()["proxy"]
    assert proxy["limits"] == {"max_body_bytes": None, **limits}
    shown = api.client.get(f"/v1/alpha/proxies/{proxy['id']}", headers=api.member).json()
    assert shown["proxy"]["limits"] == proxy["limits"]


def test_options_may_not_be_nulled(api: Api) -> None:
    proxy = _create(api).json()["proxy"]
    response = api.client.patch(
        f"/v1/alpha/proxies/{proxy['id']}", json={"proxy": {"timeouts": None}}, headers=api.member
    )
    assert_error(response, 400, "timeouts")


def test_privacy_defaults_to_inherit_round_trips_and_refuses_other_words(api: Api) -> None:
    created = _create(api)
    assert created.status_code == 201, created.text
    proxy = created.json()["proxy"]
    assert proxy["privacy"] == {"forwarded_for": "inherit"}
    path = f"/v1/alpha/proxies/{proxy['id']}"
    patched = api.client.patch(
        path, json={"proxy": {"privacy": {"forwarded_for": "off"}}}, headers=api.member
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["proxy"]["privacy"] == {"forwarded_for": "off"}
    bad = api.client.patch(
        path, json={"proxy": {"privacy": {"forwarded_for": "maybe"}}}, headers=api.member
    )
    assert_error(bad, 422, "privacy.forwarded_for")
    assert api.client.get(path, headers=api.member).json()["proxy"]["privacy"] == {
        "forwarded_for": "off"
    }


def test_a_path_rewrite_round_trips(api: Api) -> None:
    created = _create(api, path_prefix="/health", rewrite={"backend_prefix": "/cfg/health"})
    assert created.status_code == 201, created.text
    proxy = created.json()["proxy"]
    assert proxy["rewrite"] == {"backend_prefix": "/cfg/health"}
    assert _create(api, hostname="two.alpha.example.org").json()["proxy"]["rewrite"] == {
        "backend_prefix": None
    }


def test_cache_and_purge_round_trip_and_the_purge_key_is_never_shown(api: Api) -> None:
    created = _create(
        api,
        cache={"enabled": True, "max_bytes": 1 << 20, "key": {"headers": ["Accept-Language"]}},
        purge={"allow_from": ["10.0.0.0/8"], "key": "s3cret-purge-key-0123456789abcdef"},
    )
    assert created.status_code == 201, created.text
    proxy = created.json()["proxy"]
    assert proxy["cache"] == {
        "enabled": True,
        "max_bytes": 1 << 20,
        "default_ttl": None,
        "key": {"query": True, "headers": ["Accept-Language"]},
    }
    assert proxy["purge"] == {"allow_from": ["10.0.0.0/8"], "key_set": True}
    shown = api.client.get(f"/v1/alpha/proxies/{proxy['id']}", headers=api.reader).text
    assert "s3cret-purge-key-0123456789abcdef" not in shown


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        # A header name with CR LF or a space would be no field name at all.
        ({"cache": {"key": {"headers": ["X-A\r\nX-Evil: 1"]}}}, "cache.key.headers"),
        ({"cache": {"key": {"headers": ["bad name"]}}}, "cache.key.headers"),
        ({"cache": {"key": {"headers": ["x"] * 17}}}, "cache.key.headers"),
        ({"cache": {"max_bytes": 0}}, "cache.max_bytes"),
        ({"cache": {"max_bytes": 1 << 41}}, "cache.max_bytes"),
        ({"cache": {"default_ttl": -1}}, "cache.default_ttl"),
        ({"purge": {"allow_from": ["10.0.0.0/33"]}}, "purge.allow_from"),
        ({"purge": {"allow_from": ["example.org"]}}, "purge.allow_from"),
        ({"purge": {"key": "short"}}, "purge.key"),
        ({"purge": {"key": "a-16-char-secret"}}, "purge.key"),  # 16: too short now
        ({"purge": {"key": "thirty-two chars  with  spaces!!"}}, "purge.key"),
        ({"purge": {"key": "a-long-enough-key-0123456789\r\nX-Evil: 1"}}, "purge.key"),
        ({"purge": {"key": "ab" * 20}}, "purge.key"),  # long, but two characters
        ({"purge": {"key": "ünïcödé-0123456789abcdef0123456789"}}, "purge.key"),
    ],
)
def test_bad_cache_and_purge_options_are_422_naming_the_field(
    api: Api, fields: dict[str, Any], field: str
) -> None:
    assert_error(_create(api, **fields), 422, field)
