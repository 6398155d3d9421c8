"""Quotas over HTTP: admins show and set them; a create over quota is a 403 that names
the quota, its limit and the use (as Octavia's quotas answer); both dialects."""

from __future__ import annotations

import json
from typing import Any

import trustme
from tests.api.conftest import Api, assert_error
from tests.api.test_certificates import pems


def _set(
    api: Api, project: str, quota: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    return api.client.put(
        f"/v1/quotas/{project}", json={"quota": quota}, headers=headers or api.admin
    )


def _proxy(api: Api, name: str, backends: int = 0) -> Any:
    body = {
        "hostname": f"{name}.alpha.example.org",
        "backends": [{"address": f"10.0.0.{n + 1}", "port": 80} for n in range(backends)],
    }
    return api.client.post("/v1/alpha/proxies", json={"proxy": body}, headers=api.member)


def test_admins_set_and_show_a_projects_quota_with_its_use(api: Api) -> None:
    assert _proxy(api, "one", backends=2).status_code == 201
    response = _set(api, "alpha", {"proxies": 5, "certificates": 0})
    assert response.status_code == 200, response.text
    quota = response.json()["quota"]
    assert quota["project"] == "alpha"
    assert quota["own"] == {
        "proxies": 5,
        "backends_per_proxy": None,
        "certificates": 0,
        "cache_bytes": None,
    }
    assert quota["limits"]["proxies"] == 5 and quota["limits"]["backends_per_proxy"] == -1
    assert quota["in_use"] == {
        "proxies": 1,
        "backends_per_proxy": 2,
        "certificates": 0,
        "cache_bytes": 0,
    }
    assert api.client.get("/v1/quotas/alpha", headers=api.admin).json()["quota"] == quota


def test_a_create_over_quota_gets_403_with_name_limit_and_use(api: Api) -> None:
    _set(api, "alpha", {"proxies": 1})
    assert _proxy(api, "one").status_code == 201
    response = _proxy(api, "two")
    error = assert_error(response, 403, "proxies")
    assert error["quota"] == {"name": "proxies", "limit": 1, "in_use": 1}
    assert "quota proxies" in str(error["message"])


def test_backends_per_proxy_is_refused_on_association(api: Api) -> None:
    _set(api, "alpha", {"backends_per_proxy": 1})
    assert _proxy(api, "one", backends=1).status_code == 201
    body = {"backend": {"address": "10.0.0.9", "port": 80}}
    response = api.client.post(
        "/v1/alpha/proxies/one.alpha.example.org/backends", json=body, headers=api.member
    )
    error = assert_error(response, 403, "backends_per_proxy")
    assert error["quota"] == {"name": "backends_per_proxy", "limit": 1, "in_use": 1}


def test_a_certificate_over_quota_is_refused(api: Api) -> None:
    _set(api, "alpha", {"certificates": 0})
    chain, key = pems(trustme.CA().issue_cert("one.alpha.example.org"))
    body = {"certificate": {"name": "main", "chain": chain, "key": key}}
    response = api.client.post("/v1/alpha/certificates", json=body, headers=api.member)
    error = assert_error(response, 403, "certificates")
    assert error["quota"] == {"name": "certificates", "limit": 0, "in_use": 0}


def test_members_may_neither_see_nor_set_quotas(api: Api) -> None:
    assert _set(api, "alpha", {"proxies": 1000}, headers=api.member).status_code == 403
    assert api.client.get("/v1/quotas/alpha", headers=api.member).status_code == 403


def test_bad_quota_values_are_refused_naming_the_field(api: Api) -> None:
    assert_error(_set(api, "alpha", {"proxies": -2}), 422, "proxies")
    assert_error(_set(api, "alpha", {"proxies": "3"}), 400, "proxies")
    assert_error(_set(api, "alpha", {"lbs": 3}), 400, "lbs")
    assert_error(_set(api, "nosuch", {"proxies": 3}), 404)


def test_the_dynamicproxy_api_is_held_to_the_same_quotas(api: Api) -> None:
    _set(api, "alpha", {"proxies": 1, "backends_per_proxy": 1})
    base = "/dynamicproxy-api/v1/alpha/mapping"

    def put(domain: str, backends: list[str]) -> Any:
        body = {"domain": domain, "backends": backends}
        return api.client.put(base, content=json.dumps(body).encode(), headers=api.member)

    assert put("wiki.example.org", ["http://172.16.0.5:80"]).status_code == 200
    assert put("wiki.example.org", ["http://172.16.0.6:80"]).status_code == 403  # a second
    assert put("other.example.org", ["http://172.16.0.7:80"]).status_code == 403
    routes = api.client.get(base, headers=api.member).json()["routes"]
    assert routes == [{"domain": "wiki.example.org", "backends": ["http://172.16.0.5:80"]}]


def _cached(api: Api, name: str, cache: dict[str, Any]) -> Any:
    body = {"hostname": f"{name}.alpha.example.org", "cache": cache}
    return api.client.post("/v1/alpha/proxies", json={"proxy": body}, headers=api.member)


def test_cache_bytes_counts_the_enabled_caches_max_bytes_and_refuses_growth(api: Api) -> None:
    # 64 MiB (the default) + 10 MiB; a proxy without the cache reserves nothing.
    _set(api, "alpha", {"cache_bytes": 80 << 20})
    assert _cached(api, "one", {"enabled": True}).status_code == 201
    assert _cached(api, "two", {"enabled": True, "max_bytes": 10 << 20}).status_code == 201
    assert _proxy(api, "plain").status_code == 201
    use = api.client.get("/v1/quotas/alpha", headers=api.admin).json()["quota"]["in_use"]
    assert use["cache_bytes"] == 74 << 20
    response = _cached(api, "three", {"enabled": True, "max_bytes": 7 << 20})
    error = assert_error(response, 403, "cache_bytes")
    assert error["quota"] == {"name": "cache_bytes", "limit": 80 << 20, "in_use": 74 << 20}
    assert f"quota cache_bytes of project alpha exceeded: limit {80 << 20}" in str(error["message"])
    # An update that grows a cache past the quota is refused; one that stays under it
    # passes, and so does enabling the cache within what is left.
    grow = {"proxy": {"cache": {"enabled": True, "max_bytes": 20 << 20}}}
    url = "/v1/alpha/proxies/two.alpha.example.org"
    error = assert_error(api.client.patch(url, json=grow, headers=api.member), 403, "cache_bytes")
    assert error["quota"] == {"name": "cache_bytes", "limit": 80 << 20, "in_use": 74 << 20}
    fits = {"proxy": {"cache": {"enabled": True, "max_bytes": 16 << 20}}}
    assert api.client.patch(url, json=fits, headers=api.member).status_code == 200
    enable = {"proxy": {"cache": {"enabled": True, "max_bytes": 1 << 20}}}
    plain = "/v1/alpha/proxies/plain.alpha.example.org"
    assert api.client.patch(plain, json=enable, headers=api.member).status_code == 403


def test_a_lowered_cache_quota_keeps_the_caches_and_lets_them_shrink(api: Api) -> None:
    assert _cached(api, "one", {"enabled": True, "max_bytes": 8 << 20}).status_code == 201
    _set(api, "alpha", {"cache_bytes": 1 << 20})
    url = "/v1/alpha/proxies/one.alpha.example.org"
    other = {"proxy": {"path_prefix": "/", "cache": {"enabled": True, "max_bytes": 8 << 20}}}
    assert api.client.patch(url, json=other, headers=api.member).status_code == 200
    shrink = {"proxy": {"cache": {"enabled": True, "max_bytes": 4 << 20}}}
    assert api.client.patch(url, json=shrink, headers=api.member).status_code == 200
    grow = {"proxy": {"cache": {"enabled": True, "max_bytes": 5 << 20}}}
    error = assert_error(api.client.patch(url, json=grow, headers=api.member), 403, "cache_bytes")
    assert error["quota"] == {"name": "cache_bytes", "limit": 1 << 20, "in_use": 4 << 20}
    # Deleting frees what it reserved.
    assert api.client.delete(url, headers=api.member).status_code == 204
    assert _cached(api, "two", {"enabled": True, "max_bytes": 1 << 20}).status_code == 201
