"""Discovery, projects, tokens, zones and the change log over HTTP."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api, assert_error


def test_version_discovery_and_healthz_need_no_token(api: Api) -> None:
    versions = api.client.get("/").json()["versions"]
    assert versions[0]["id"] == "v1" and versions[0]["status"] == "CURRENT"
    assert versions[0]["links"][0]["href"].endswith("/v1/")
    assert api.client.get("/healthz").json()["status"] == "ok"


def test_openapi_describes_every_v1_path(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/v1/projects",
        "/v1/zones",
        "/v1/{project}/tokens",
        "/v1/{project}/changes",
        "/v1/{project}/proxies/{proxy}",
        "/v1/{project}/proxies/{proxy}/backends/{backend}",
    ):
        assert path in paths
    assert set(paths["/v1/{project}/proxies/{proxy}/backends"]) == {"get", "post", "put"}
    assert "ProxyCreateRequest" in document["components"]["schemas"]


def test_admin_creates_and_lists_projects(api: Api) -> None:
    created = api.client.post(
        "/v1/projects", json={"project": {"name": "gamma"}}, headers=api.admin
    )
    assert created.status_code == 201 and created.json()["project"]["name"] == "gamma"
    names = [
        p["name"] for p in api.client.get("/v1/projects", headers=api.admin).json()["projects"]
    ]
    assert names == ["alpha", "beta", "gamma"]
    again = api.client.post("/v1/projects", json={"project": {"name": "gamma"}}, headers=api.admin)
    assert_error(again, 409, "name")
    assert api.client.delete("/v1/projects/gamma", headers=api.admin).status_code == 204


def test_members_cannot_manage_projects_or_zones(api: Api) -> None:
    body = {"project": {"name": "delta"}}
    assert_error(api.client.post("/v1/projects", json=body, headers=api.member), 403)
    assert_error(api.client.get("/v1/projects", headers=api.member), 403)
    zone = {"zone": {"name": "example.org", "shared": True}}
    assert_error(api.client.post("/v1/zones", json=zone, headers=api.member), 403)


def test_reserved_or_invalid_project_names_are_422(api: Api) -> None:
    for name in ("projects", "bad name", ""):
        response = api.client.post(
            "/v1/projects", json={"project": {"name": name}}, headers=api.admin
        )
        assert_error(response, 422, "name")


def test_token_secret_is_shown_once_and_works(api: Api) -> None:
    body = {"token": {"role": "reader", "description": "ci"}}
    created = api.client.post("/v1/alpha/tokens", json=body, headers=api.member)
    assert created.status_code == 201
    token = created.json()["token"]
    assert token["role"] == "reader" and token["secret"]
    listed = api.client.get("/v1/alpha/tokens", headers=api.member).json()["tokens"]
    assert token["id"] in [t["id"] for t in listed]
    assert all("secret" not in t for t in listed)
    as_new = {"X-Auth-Token": token["secret"]}
    assert api.client.get("/v1/alpha/proxies", headers=as_new).status_code == 200
    assert (
        api.client.delete(f"/v1/alpha/tokens/{token['id']}", headers=api.member).status_code == 204
    )
    assert_error(api.client.get("/v1/alpha/proxies", headers=as_new), 401)


def test_token_role_rules(api: Api) -> None:
    bad = api.client.post("/v1/alpha/tokens", json={"token": {"role": "boss"}}, headers=api.member)
    assert_error(bad, 422, "role")
    admin = api.client.post(
        "/v1/alpha/tokens", json={"token": {"role": "admin"}}, headers=api.admin
    )
    assert_error(admin, 422, "role")
    by_reader = api.client.post(
        "/v1/alpha/tokens", json={"token": {"role": "reader"}}, headers=api.reader
    )
    assert_error(by_reader, 403)


def _zone(api: Api, **zone: Any) -> Any:
    return api.client.post("/v1/zones", json={"zone": zone}, headers=api.admin)


def _claim(api: Api, hostname: str, headers: dict[str, str] | None = None) -> Any:
    body = {"proxy": {"hostname": hostname}}
    return api.client.post("/v1/alpha/proxies", json=body, headers=headers or api.member)


def test_zones_restrict_claims_once_they_exist(api: Api) -> None:
    assert _zone(api, name="wmcloud.org", shared=True).status_code == 201
    assert _zone(api, name="alpha.example.org", project="alpha").status_code == 201
    assert _zone(api, name="beta.example.org", project="beta").status_code == 201
    assert _claim(api, "wiki.wmcloud.org").status_code == 201
    assert _claim(api, "*.alpha.example.org").status_code == 201
    assert_error(_claim(api, "x.beta.example.org"), 403, "hostname")
    assert_error(_claim(api, "x.elsewhere.org"), 403, "hostname")
    wildcard = assert_error(_claim(api, "*.wmcloud.org"), 403, "hostname")
    assert "shared zone" in str(wildcard["message"])


def test_zone_listing_depends_on_the_caller(api: Api) -> None:
    _zone(api, name="wmcloud.org", shared=True, default=True)
    _zone(api, name="alpha.example.org", project="alpha")
    _zone(api, name="beta.example.org", project="beta")
    everything = api.client.get("/v1/zones", headers=api.admin).json()["zones"]
    assert len(everything) == 3
    mine = api.client.get("/v1/zones", headers=api.member).json()["zones"]
    assert sorted(z["name"] for z in mine) == ["alpha.example.org", "wmcloud.org"]
    assert_error(_zone(api, name="wmcloud.org", shared=True), 409, "name")
    assert_error(_zone(api, name="x.org", project="nosuch"), 422, "project")


def test_changes_show_before_and_after_newest_first(api: Api) -> None:
    created = _claim(api, "wiki.alpha.example.org").json()["proxy"]
    pid = created["id"]
    patch = {"proxy": {"backend_port": 9090}}
    api.client.patch(f"/v1/alpha/proxies/{pid}", json=patch, headers=api.member)
    changes = api.client.get("/v1/alpha/changes", headers=api.reader).json()["changes"]
    assert changes[0]["action"] == "update" and changes[0]["object_id"] == pid
    assert changes[0]["before"]["backend_port"] == 80
    assert changes[0]["after"]["backend_port"] == 9090
    assert changes[0]["actor"].startswith("token:")
    assert changes[1]["action"] == "create" and changes[1]["before"] is None
    since = api.client.get(
        "/v1/alpha/changes", params={"since": changes[1]["revision"]}, headers=api.reader
    ).json()["changes"]
    assert [c["revision"] for c in since] == [changes[0]["revision"]]
    limited = api.client.get("/v1/alpha/changes", params={"limit": 1}, headers=api.reader)
    assert len(limited.json()["changes"]) == 1
    assert_error(
        api.client.get("/v1/alpha/changes", params={"since": "x"}, headers=api.reader), 400, "since"
    )
    beta = api.client.get("/v1/beta/changes", headers=api.admin).json()["changes"]
    assert all(c["project"] == "beta" for c in beta)
