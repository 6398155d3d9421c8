"""Proxies and backends over HTTP: envelopes, errors, tenant isolation."""

from __future__ import annotations

from typing import Any

import pytest
from tests.api.conftest import Api, assert_error

WIKI = {"hostname": "wiki.alpha.example.org", "backend_port": 8080}


def _create(api: Api, proxy: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return api.client.post(
        "/v1/alpha/proxies", json={"proxy": proxy}, headers=headers or api.member
    )


def test_create_proxy_returns_envelope_with_server_fields(api: Api) -> None:
    body = {**WIKI, "backends": [{"address": "10.0.0.5"}, {"address": "b.svc", "port": 81}]}
    response = _create(api, body)
    assert response.status_code == 201
    proxy = response.json()["proxy"]
    assert proxy["project"] == "alpha" and proxy["path_prefix"] == "/"
    assert len(proxy["id"]) == 32 and proxy["revision"] > 0
    assert proxy["created_at"] and proxy["updated_at"] and proxy["source"] == "api"
    first = proxy["backends"][0]
    assert (first["address"], first["port"], first["health"], first["source"]) == (
        "10.0.0.5",
        8080,
        "unknown",
        "api",
    )


def test_show_by_id_or_hostname_and_list_with_filter(api: Api) -> None:
    created = _create(api, WIKI).json()["proxy"]
    _create(api, {"hostname": "other.alpha.example.org"})
    for ref in (created["id"], "WIKI.alpha.example.org."):
        shown = api.client.get(f"/v1/alpha/proxies/{ref}", headers=api.reader)
        assert shown.json()["proxy"]["id"] == created["id"]
    listed = api.client.get("/v1/alpha/proxies", headers=api.reader).json()["proxies"]
    assert len(listed) == 2
    filtered = api.client.get(
        "/v1/alpha/proxies", params={"hostname": WIKI["hostname"]}, headers=api.reader
    )
    assert [p["id"] for p in filtered.json()["proxies"]] == [created["id"]]


def test_patch_updates_fields_and_delete_removes(api: Api) -> None:
    pid = _create(api, WIKI).json()["proxy"]["id"]
    patch = {"algorithm": "least_conn", "health_check": {"path": "/health"}}
    updated = api.client.patch(
        f"/v1/alpha/proxies/{pid}", json={"proxy": patch}, headers=api.member
    )
    assert updated.status_code == 200
    assert updated.json()["proxy"]["algorithm"] == "least_conn"
    assert updated.json()["proxy"]["health_check"]["path"] == "/health"
    assert api.client.delete(f"/v1/alpha/proxies/{pid}", headers=api.member).status_code == 204
    assert_error(api.client.get(f"/v1/alpha/proxies/{pid}", headers=api.member), 404, "proxy")


def test_backend_lifecycle_keeps_ids_and_reports_health(api: Api) -> None:
    pid = _create(api, WIKI).json()["proxy"]["id"]
    url = f"/v1/alpha/proxies/{pid}/backends"
    added = api.client.post(url, json={"backend": {"address": "10.0.0.1"}}, headers=api.member)
    assert added.status_code == 201
    bid = added.json()["backend"]["id"]
    assert_error(
        api.client.post(url, json={"backend": {"address": "10.0.0.1"}}, headers=api.member),
        409,
        "address",
    )
    put = {"backends": [{"address": "10.0.0.1", "port": 8080}, {"address": "10.0.0.2"}]}
    replaced = api.client.put(url, json=put, headers=api.member).json()["backends"]
    assert bid in [b["id"] for b in replaced] and len(replaced) == 2
    patched = api.client.patch(
        f"{url}/10.0.0.2:8080", json={"backend": {"weight": 0}}, headers=api.member
    )
    assert patched.json()["backend"]["weight"] == 0
    assert api.client.delete(f"{url}/{bid}", headers=api.member).status_code == 204
    listed = api.client.get(url, headers=api.reader).json()["backends"]
    assert [(b["address"], b["health"]) for b in listed] == [("10.0.0.2", "unknown")]


def test_a_tls_backend_is_stored_and_shown_as_one(api: Api) -> None:
    body = {**WIKI, "backends": [{"address": "10.0.0.5", "port": 443, "tls": True}]}
    pid = _create(api, body).json()["proxy"]["id"]
    url = f"/v1/alpha/proxies/{pid}/backends"
    added = api.client.post(url, json={"backend": {"address": "10.0.0.6"}}, headers=api.member)
    assert added.json()["backend"]["tls"] is False  # the model's default
    listed = api.client.get(url, headers=api.reader).json()["backends"]
    assert [(b["address"], b["tls"]) for b in listed] == [("10.0.0.5", True), ("10.0.0.6", False)]
    assert_error(
        api.client.post(
            url, json={"backend": {"address": "10.0.0.7", "tls": "yes"}}, headers=api.member
        ),
        400,
        "tls",
    )


def test_backend_health_comes_from_the_injected_callback(api: Api) -> None:
    from starlette.testclient import TestClient

    from portway.api import create_app

    app = create_app(api.service, backend_health=lambda p, b: {"health": "up"})
    pid = _create(api, {**WIKI, "backends": [{"address": "10.0.0.9"}]}).json()["proxy"]["id"]
    with TestClient(app) as client:
        listed = client.get(f"/v1/alpha/proxies/{pid}/backends", headers=api.member)
    assert listed.json()["backends"][0]["health"] == "up"


@pytest.mark.parametrize(
    ("hostname", "why"),
    [
        ("nodot", "no dot"),
        ("-bad.example.org", "label starts with a hyphen"),
        ("a" * 64 + ".example.org", "label longer than 63"),
        ("a." * 127 + "org", "name longer than 253"),
        ("under_score.example.org", "underscore"),
        ("*.*.example.org", "two wildcards"),
    ],
)
def test_invalid_hostname_is_422_naming_hostname(api: Api, hostname: str, why: str) -> None:
    assert_error(_create(api, {"hostname": hostname}), 422, "hostname")


def test_trailing_dot_and_case_are_normalised(api: Api) -> None:
    proxy = _create(api, {"hostname": "Mixed.Alpha.Example.org."}).json()["proxy"]
    assert proxy["hostname"] == "mixed.alpha.example.org"


def test_leading_wildcard_is_accepted_without_zones(api: Api) -> None:
    assert _create(api, {"hostname": "*.alpha.example.org"}).status_code == 201


@pytest.mark.parametrize(
    ("proxy", "field"),
    [
        ({**WIKI, "backend_port": 0}, "backend_port"),
        ({**WIKI, "backend_port": 70000}, "backend_port"),
        ({**WIKI, "algorithm": "fastest"}, "algorithm"),
        ({**WIKI, "path_prefix": "no-slash"}, "path_prefix"),
        ({**WIKI, "backends": [{"address": "10.0.0.1", "weight": 300}]}, "backends[0].weight"),
        ({**WIKI, "backends": [{"address": "bad host!"}]}, "backends[0].address"),
        ({**WIKI, "session_persistence": {"type": "magic"}}, "session_persistence.type"),
    ],
)
def test_rule_violations_are_422_naming_the_field(
    api: Api, proxy: dict[str, Any], field: str
) -> None:
    assert_error(_create(api, proxy), 422, field)


@pytest.mark.parametrize(
    ("proxy", "field"),
    [
        ({**WIKI, "backend_port": "80"}, "backend_port"),
        ({"backend_port": 80}, "hostname"),
        ({**WIKI, "colour": "blue"}, "colour"),
        ({**WIKI, "backends": [{"address": "10.0.0.1", "port": True}]}, "backends[0].port"),
    ],
)
def test_wrong_types_are_400_naming_the_field(api: Api, proxy: dict[str, Any], field: str) -> None:
    assert_error(_create(api, proxy), 400, field)


def test_malformed_json_is_400(api: Api) -> None:
    response = api.client.post(
        "/v1/alpha/proxies",
        content=b'{"proxy": ',
        headers={**api.member, "Content-Type": "application/json"},
    )
    assert_error(response, 400, "body")


def test_missing_envelope_is_400_naming_it(api: Api) -> None:
    response = api.client.post("/v1/alpha/proxies", json=WIKI, headers=api.member)
    assert_error(response, 400)


def test_body_over_one_mebibyte_is_413(api: Api) -> None:
    big = b'{"proxy": {"hostname": "' + b"a" * (1024 * 1024) + b'"}}'
    response = api.client.post("/v1/alpha/proxies", content=big, headers=api.member)
    assert_error(response, 413)


def test_streamed_body_over_limit_is_413_without_content_length(api: Api) -> None:
    def chunks() -> Any:
        for _ in range(20):
            yield b"x" * (64 * 1024)

    response = api.client.post("/v1/alpha/proxies", content=chunks(), headers=api.member)
    assert_error(response, 413)


def test_wrong_method_is_405_with_allow(api: Api) -> None:
    response = api.client.put("/v1/alpha/proxies", json={}, headers=api.member)
    assert_error(response, 405)
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["allow"].split(",")}


def test_unknown_path_is_json_404(api: Api) -> None:
    assert_error(api.client.get("/v2/nothing", headers=api.member), 404)


def test_another_projects_hostname_is_409(api: Api) -> None:
    assert _create(api, WIKI).status_code == 201
    response = api.client.post("/v1/beta/proxies", json={"proxy": WIKI}, headers=api.other)
    error = assert_error(response, 409, "hostname")
    assert "already used by another project" in str(error["message"])


def test_same_project_may_add_path_prefixes_on_its_hostname(api: Api) -> None:
    assert _create(api, WIKI).status_code == 201
    assert _create(api, {**WIKI, "path_prefix": "/tool/"}).json()["proxy"]["path_prefix"] == "/tool"
    assert_error(_create(api, {**WIKI, "path_prefix": "/tool"}), 409, "path_prefix")


def test_member_of_another_project_sees_nothing(api: Api) -> None:
    pid = _create(api, WIKI).json()["proxy"]["id"]
    for method, url in [
        ("GET", "/v1/alpha/proxies"),
        ("GET", f"/v1/alpha/proxies/{pid}"),
        ("DELETE", f"/v1/alpha/proxies/{pid}"),
        ("GET", "/v1/alpha/changes"),
        ("GET", "/v1/alpha/tokens"),
    ]:
        assert_error(api.client.request(method, url, headers=api.other), 404)
    # Addressing its own project with another project's id does not find it either.
    assert_error(api.client.get(f"/v1/beta/proxies/{pid}", headers=api.other), 404, "proxy")
    claimed = api.client.post(
        "/v1/alpha/proxies", json={"proxy": {"hostname": "x.example.org"}}, headers=api.other
    )
    assert_error(claimed, 404)


def test_reader_cannot_write(api: Api) -> None:
    assert_error(_create(api, WIKI, api.reader), 403)
    pid = _create(api, WIKI).json()["proxy"]["id"]
    response = api.client.delete(f"/v1/alpha/proxies/{pid}", headers=api.reader)
    assert_error(response, 403)


def test_missing_or_bad_token_is_401(api: Api) -> None:
    assert_error(api.client.get("/v1/alpha/proxies"), 401)
    assert_error(api.client.get("/v1/alpha/proxies", headers={"X-Auth-Token": "nope"}), 401)
    bearer = {"Authorization": "Bearer " + api.member["X-Auth-Token"]}
    assert api.client.get("/v1/alpha/proxies", headers=bearer).status_code == 200
