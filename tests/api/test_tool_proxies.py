"""A Toolforge tool's proxy through the API: the ``toolforge`` option and backend patterns."""

from __future__ import annotations

from tests.api.conftest import Api, assert_error

TOOL = {
    "hostname": "alpha.toolforge.org",
    "toolforge": {"canonical": True},
    "backends": [
        {"address": "10.0.0.1", "port": 8000, "pattern": ".*"},
        {"address": "10.0.0.1", "port": 8000, "pattern": "/api.*"},
    ],
}


def test_a_tool_proxy_keeps_its_patterns_and_canonical_mark(api: Api) -> None:
    created = api.client.post("/v1/alpha/proxies", json={"proxy": TOOL}, headers=api.member)
    assert created.status_code == 201, created.text
    proxy = created.json()["proxy"]
    assert proxy["toolforge"] == {"canonical": True}
    # One destination may serve two patterns (migration 0006's unique constraint).
    assert sorted(b["pattern"] for b in proxy["backends"]) == [".*", "/api.*"]
    shown = api.client.get(f"/v1/alpha/proxies/{proxy['id']}", headers=api.reader).json()
    assert shown["proxy"]["status"] == "active"
    patched = api.client.patch(
        f"/v1/alpha/proxies/{proxy['id']}",
        json={"proxy": {"toolforge": None}},
        headers=api.member,
    )
    assert patched.json()["proxy"]["toolforge"] is None


def test_ordinary_proxies_show_no_toolforge_and_no_patterns(api: Api) -> None:
    body = {"hostname": "www.example.org", "backends": [{"address": "10.0.0.1"}]}
    proxy = api.client.post("/v1/alpha/proxies", json={"proxy": body}, headers=api.member)
    assert proxy.json()["proxy"]["toolforge"] is None
    assert proxy.json()["proxy"]["backends"][0]["pattern"] is None


def test_a_pattern_re2_refuses_is_a_422_naming_it(api: Api) -> None:
    for pattern in ("(a", "(?=x)", "\\1", "a\nb"):
        body = {**TOOL, "backends": [{"address": "10.0.0.1", "pattern": pattern}]}
        response = api.client.post("/v1/alpha/proxies", json={"proxy": body}, headers=api.member)
        assert_error(response, 422, "backends[0].pattern")


def test_the_same_pattern_twice_is_a_422(api: Api) -> None:
    body = {
        **TOOL,
        "backends": [
            {"address": "10.0.0.1", "pattern": ".*"},
            {"address": "10.0.0.2", "pattern": ".*"},
        ],
    }
    response = api.client.post("/v1/alpha/proxies", json={"proxy": body}, headers=api.member)
    assert_error(response, 422)


def test_adding_a_backend_for_a_pattern_that_has_one_is_a_409(api: Api) -> None:
    created = api.client.post("/v1/alpha/proxies", json={"proxy": TOOL}, headers=api.member)
    url = f"/v1/alpha/proxies/{created.json()['proxy']['id']}/backends"
    body = {"backend": {"address": "10.0.0.9", "pattern": "/api.*"}}
    assert_error(api.client.post(url, json=body, headers=api.member), 409, "pattern")
