"""The dynamicproxy API (compat.md §1): every route with the original's exact bodies, the
bugs it had fixed, its domain and zone rules, and its mappings as ordinary proxies.

Bodies are sent as the ``wmcs-webproxy`` script sends them: JSON without Content-Type.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.api.conftest import Api, assert_error

from portway.model import Role
from portway.service import Actor

BASE = "/dynamicproxy-api/v1"


def raw(api: Api, method: str, path: str, headers: dict[str, str], body: Any = None) -> Any:
    """``body`` as JSON bytes with no Content-Type, like wmcs-webproxy."""
    content = None if body is None else json.dumps(body).encode()
    response = api.client.request(method, f"{BASE}{path}", headers=headers, content=content)
    assert "content-type" not in {k.lower() for k in response.request.headers}
    return response


def put(api: Api, domain: str, backends: list[str], headers: dict[str, str] | None = None) -> Any:
    body = {"domain": domain, "backends": backends}
    return raw(api, "PUT", "/alpha/mapping", headers or api.member, body)


def test_put_answers_an_empty_200_and_the_mapping_reads_back_exactly(api: Api) -> None:
    reply = put(api, "wiki.example.org", ["http://172.16.0.5:80", "http://172.16.0.6"])
    assert (reply.status_code, reply.content) == (200, b"")
    listed = raw(api, "GET", "/alpha/mapping", api.member)
    assert listed.status_code == 200
    assert listed.json() == {
        "routes": [
            {
                "domain": "wiki.example.org",
                "backends": ["http://172.16.0.5:80", "http://172.16.0.6"],
            }
        ]
    }
    one = raw(api, "GET", "/alpha/mapping/wiki.example.org", api.member)
    assert one.status_code == 200
    assert one.json() == {
        "domain": "wiki.example.org",
        "backends": ["http://172.16.0.5:80", "http://172.16.0.6"],
    }


def test_put_on_an_existing_domain_appends_its_backends(api: Api) -> None:
    assert put(api, "wiki.example.org", ["http://172.16.0.5:80"]).status_code == 200
    reply = put(api, "wiki.example.org", ["http://172.16.0.7:8080", "http://172.16.0.5:80"])
    assert (reply.status_code, reply.content) == (200, b"")
    one = raw(api, "GET", "/alpha/mapping/wiki.example.org", api.member).json()
    assert one["backends"] == ["http://172.16.0.5:80", "http://172.16.0.7:8080"]


def test_post_replaces_the_backends_and_answers_ok(api: Api) -> None:
    put(api, "wiki.example.org", ["http://172.16.0.5:80", "http://172.16.0.6:80"])
    body = {"domain": "wiki.example.org", "backends": ["http://172.16.0.9:8000"]}
    reply = raw(api, "POST", "/alpha/mapping/wiki.example.org", api.member, body)
    assert (reply.status_code, reply.text) == (200, "OK")
    one = raw(api, "GET", "/alpha/mapping/wiki.example.org", api.member).json()
    assert one == {"domain": "wiki.example.org", "backends": ["http://172.16.0.9:8000"]}


def test_post_may_rename_the_domain(api: Api) -> None:
    put(api, "old.example.org", ["http://172.16.0.5:80"])
    before = api.service.get_mapping(Actor.system("test"), "alpha", "old.example.org")
    body = {"domain": "new.example.org", "backends": ["http://172.16.0.5:80"]}
    reply = raw(api, "POST", "/alpha/mapping/old.example.org", api.member, body)
    assert (reply.status_code, reply.text) == (200, "OK")
    gone = raw(api, "GET", "/alpha/mapping/old.example.org", api.member)
    assert (gone.status_code, gone.text) == (404, "No such domain")
    renamed = raw(api, "GET", "/alpha/mapping/new.example.org", api.member).json()
    assert renamed == {"domain": "new.example.org", "backends": ["http://172.16.0.5:80"]}
    after = api.service.get_mapping(Actor.system("test"), "alpha", "new.example.org")
    assert after.id == before.id  # the same proxy, renamed in one write
    assert after.backends[0].id == before.backends[0].id  # its backend kept (and its health)


def test_delete_answers_deleted_and_the_domain_is_gone(api: Api) -> None:
    put(api, "wiki.example.org", ["http://172.16.0.5:80"])
    reply = raw(api, "DELETE", "/alpha/mapping/wiki.example.org", api.member)
    assert (reply.status_code, reply.text) == (200, "deleted")
    assert raw(api, "GET", "/alpha/mapping", api.member).json() == {"routes": []}


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_an_unknown_domain_is_404_no_such_domain(api: Api, method: str) -> None:
    body = {"domain": "x.example.org", "backends": []} if method == "POST" else None
    reply = raw(api, method, "/alpha/mapping/x.example.org", api.member, body)
    # The original answered 400 here; the text stays.
    assert (reply.status_code, reply.text) == (404, "No such domain")


@pytest.mark.parametrize("domain", ["nodot", "-bad.example.org", "a..example.org", "", 7])
def test_an_invalid_domain_is_400_invalid_domain(api: Api, domain: object) -> None:
    reply = raw(api, "PUT", "/alpha/mapping", api.member, {"domain": domain, "backends": []})
    assert (reply.status_code, reply.text) == (400, "Invalid domain")
    assert api.service.list_proxies(Actor.system("test"), "alpha") == []


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"", "body"),
        (b"not json", "body"),
        (b'["wiki.example.org"]', "body"),
        (b'{"backends": ["http://172.16.0.5"]}', "domain"),
        (b'{"domain": "wiki.example.org"}', "backends"),
        (b'{"domain": "wiki.example.org", "backends": "http://172.16.0.5"}', "backends"),
        (b'{"domain": "wiki.example.org", "backends": [5]}', "backends[0]"),
    ],
)
def test_a_malformed_put_is_400_and_changes_nothing(api: Api, content: bytes, field: str) -> None:
    # The original answered 200 to these.
    reply = api.client.put(f"{BASE}/alpha/mapping", headers=api.member, content=content)
    assert_error(reply, 400, field)
    assert api.service.list_proxies(Actor.system("test"), "alpha") == []


@pytest.mark.parametrize(
    "url",
    [
        "https://172.16.0.5:443",
        "ftp://172.16.0.5",
        "http://172.16.0.5:80/path",
        "http://user@172.16.0.5",
        "http://172.16.0.5:99999",
        "http://172.16.0.5?x=1",
        "http://",
    ],
)
def test_a_backend_that_is_not_plain_http_host_port_is_422(api: Api, url: str) -> None:
    assert_error(put(api, "wiki.example.org", [url]), 422, "backends[0]")


def test_a_domain_is_stored_lower_case_without_its_trailing_dot(api: Api) -> None:
    assert put(api, "Wiki.Example.ORG.", ["http://172.16.0.5"]).status_code == 200
    assert raw(api, "GET", "/alpha/mapping/wiki.example.org", api.member).status_code == 200


def test_an_unknown_project_has_no_routes(api: Api) -> None:
    reply = raw(api, "GET", "/nobody/mapping", api.admin)
    assert (reply.status_code, reply.json()) == (200, {"routes": []})


def test_a_token_of_another_project_gets_403_on_every_route(api: Api) -> None:
    put(api, "wiki.example.org", ["http://172.16.0.5"])
    body = {"domain": "wiki.example.org", "backends": ["http://172.16.0.6"]}
    calls = [
        ("GET", "/alpha/zones", None),
        ("GET", "/alpha/mapping", None),
        ("PUT", "/alpha/mapping", body),
        ("GET", "/alpha/mapping/wiki.example.org", None),
        ("POST", "/alpha/mapping/wiki.example.org", body),
        ("DELETE", "/alpha/mapping/wiki.example.org", None),
    ]
    for method, path, sent in calls:
        assert_error(raw(api, method, path, api.other, sent), 403, "project")
    one = raw(api, "GET", "/alpha/mapping/wiki.example.org", api.member).json()
    assert one["backends"] == ["http://172.16.0.5"]


def test_a_reader_may_read_but_not_write(api: Api) -> None:
    put(api, "wiki.example.org", ["http://172.16.0.5"])
    assert raw(api, "GET", "/alpha/mapping", api.reader).status_code == 200
    assert raw(api, "GET", "/alpha/mapping/wiki.example.org", api.reader).status_code == 200
    body = {"domain": "wiki.example.org", "backends": ["http://172.16.0.6"]}
    assert_error(put(api, "other.example.org", ["http://172.16.0.6"], api.reader), 403)
    assert_error(raw(api, "POST", "/alpha/mapping/wiki.example.org", api.reader, body), 403)
    assert_error(raw(api, "DELETE", "/alpha/mapping/wiki.example.org", api.reader), 403)
    assert raw(api, "GET", "/alpha/mapping", api.member).json()["routes"] == [
        {"domain": "wiki.example.org", "backends": ["http://172.16.0.5"]}
    ]


def test_without_a_token_every_route_is_401(api: Api) -> None:
    assert_error(raw(api, "GET", "/alpha/mapping", {}), 401)
    assert_error(raw(api, "PUT", "/alpha/mapping", {"X-Auth-Token": "nope"}, {}), 401)


def test_a_mapping_is_a_proxy_of_the_native_api_made_by_dynamicproxy(api: Api) -> None:
    put(api, "wiki.example.org", ["http://172.16.0.5:8080"])
    proxies = api.client.get("/v1/alpha/proxies", headers=api.member).json()["proxies"]
    assert len(proxies) == 1
    proxy = proxies[0]
    assert (proxy["hostname"], proxy["path_prefix"], proxy["algorithm"]) == (
        "wiki.example.org",
        "/",
        "random",
    )
    assert proxy["source"] == "dynamicproxy"
    assert [(b["address"], b["port"]) for b in proxy["backends"]] == [("172.16.0.5", 8080)]
    changes = api.client.get("/v1/alpha/changes", headers=api.member).json()["changes"]
    assert changes[0]["kind"] == "proxy" and changes[0]["action"] == "create"
    assert changes[0]["actor"].endswith(" via dynamicproxy")


def test_native_edits_show_through_the_dynamicproxy_api(api: Api) -> None:
    put(api, "wiki.example.org", ["http://172.16.0.5:8080"])
    path = "/v1/alpha/proxies/wiki.example.org/backends"
    added = api.client.post(
        path, headers=api.member, json={"backend": {"address": "fd00::5", "port": 81}}
    )
    assert added.status_code == 201, added.text
    one = raw(api, "GET", "/alpha/mapping/wiki.example.org", api.member).json()
    assert sorted(one["backends"]) == ["http://172.16.0.5:8080", "http://[fd00::5]:81"]
    # Replacing the set natively keeps the text of a backend that stays.
    kept = {"backends": [{"address": "172.16.0.5", "port": 8080}]}
    assert api.client.put(path, headers=api.member, json=kept).status_code == 200
    one = raw(api, "GET", "/alpha/mapping/wiki.example.org", api.member).json()
    assert one["backends"] == ["http://172.16.0.5:8080"]


def test_two_projects_cannot_see_or_touch_each_others_mappings(api: Api) -> None:
    put(api, "wiki.example.org", ["http://172.16.0.5"])
    beta_put = {"domain": "wiki.example.org", "backends": ["http://172.16.0.66"]}
    # The dynamicproxy API: beta's own project has nothing, and the name is taken.
    assert raw(api, "GET", "/beta/mapping", api.other).json() == {"routes": []}
    gone = raw(api, "GET", "/beta/mapping/wiki.example.org", api.other)
    assert (gone.status_code, gone.text) == (404, "No such domain")
    assert_error(raw(api, "PUT", "/beta/mapping", api.other, beta_put), 409, "hostname")
    post = raw(api, "POST", "/beta/mapping/wiki.example.org", api.other, beta_put)
    assert (post.status_code, post.text) == (404, "No such domain")
    # The native API: alpha's proxy does not exist for beta.
    assert_error(api.client.get("/v1/alpha/proxies", headers=api.other), 404)
    assert_error(api.client.get("/v1/beta/proxies/wiki.example.org", headers=api.other), 404)
    assert_error(api.client.delete("/v1/beta/proxies/wiki.example.org", headers=api.other), 404)
    one = raw(api, "GET", "/alpha/mapping/wiki.example.org", api.member).json()
    assert one["backends"] == ["http://172.16.0.5"]


def test_renaming_onto_another_mapping_of_the_project_is_refused(api: Api) -> None:
    put(api, "a.example.org", ["http://172.16.0.5"])
    put(api, "b.example.org", ["http://172.16.0.6"])
    body = {"domain": "b.example.org", "backends": ["http://172.16.0.7"]}
    assert_error(raw(api, "POST", "/alpha/mapping/a.example.org", api.member, body), 409)
    one = raw(api, "GET", "/alpha/mapping/a.example.org", api.member).json()
    assert one["backends"] == ["http://172.16.0.5"]  # nothing half done


def test_a_backend_with_a_bad_address_changes_nothing(api: Api) -> None:
    put(api, "wiki.example.org", ["http://172.16.0.5"])
    body = {"domain": "new.example.org", "backends": ["http://-bad-:80"]}
    assert_error(raw(api, "POST", "/alpha/mapping/wiki.example.org", api.member, body), 422)
    assert raw(api, "GET", "/alpha/mapping/wiki.example.org", api.member).status_code == 200


# -- zones ---------------------------------------------------------------------------


def _zones(api: Api) -> None:
    admin = Actor.system("test")
    api.service.create_zone(admin, "wmcloud.org", shared=True, default=True)
    api.service.create_zone(admin, "wmflabs.org", shared=True, deprecated=True)
    api.service.create_zone(admin, "alpha.example.org", project="alpha")
    api.service.create_zone(admin, "beta.example.org", project="beta")
    api.service.create_zone(admin, "tools.example.org", shared_host=True)


def test_zones_lists_the_zones_the_project_may_use(api: Api) -> None:
    _zones(api)
    reply = raw(api, "GET", "/alpha/zones", api.reader)
    assert reply.status_code == 200
    assert reply.json() == {
        "alpha.example.org": {"deprecated": False, "default": False, "shared": False},
        "wmcloud.org": {"deprecated": False, "default": True, "shared": True},
        "wmflabs.org": {"deprecated": True, "default": False, "shared": True},
    }
    # A service-wide admin asking for a project sees that project's zones.
    assert raw(api, "GET", "/beta/zones", api.admin).json().keys() == {
        "beta.example.org",
        "wmcloud.org",
        "wmflabs.org",
    }


@pytest.mark.parametrize(
    ("domain", "status"),
    [
        ("wiki.wmcloud.org", 200),  # one label under a shared zone
        ("*.alpha.example.org", 200),  # a wildcard in the project's own zone
        ("alpha.example.org", 200),  # the project's own zone itself
        ("*.wmcloud.org", 403),  # a wildcard in a shared zone
        ("wmcloud.org", 403),  # the shared zone's own name
        ("a.wiki.wmcloud.org", 403),  # two labels under
        ("wiki.beta.example.org", 403),  # another project's zone
        ("wiki.example.com", 403),  # no zone
    ],
)
def test_a_domain_must_be_in_a_zone_the_project_may_use(api: Api, domain: str, status: int) -> None:
    _zones(api)
    reply = put(api, domain, ["http://172.16.0.5"])
    if status == 200:
        assert (reply.status_code, reply.content) == (200, b"")
    else:
        assert_error(reply, status, "hostname")


def test_a_member_token_of_portway_writes_and_keystone_style_roles_map(api: Api) -> None:
    # Portway's own member token is a writer of its project through this API too.
    _, secret = api.service.create_token(Actor.system("test"), "alpha", Role.MEMBER)
    reply = put(api, "wiki.example.org", ["http://172.16.0.5"], {"X-Auth-Token": secret})
    assert reply.status_code == 200


def test_openapi_documents_every_dynamicproxy_route_with_its_bodies(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    mapping, one = f"{BASE}/{{project}}/mapping", f"{BASE}/{{project}}/mapping/{{domain}}"
    routes = {p: sorted(ops) for p, ops in doc["paths"].items() if p.startswith(BASE)}
    assert routes == {
        f"{BASE}/{{project}}/zones": ["get"],
        mapping: ["get", "put"],
        one: ["delete", "get", "post"],
    }
    put_op = doc["paths"][mapping]["put"]
    assert put_op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MappingIn"
    }
    assert put_op["responses"]["200"]["content"] == {
        "text/html": {"schema": {"type": "string", "const": ""}}
    }
    assert doc["paths"][one]["post"]["responses"]["200"]["content"]["text/html"]["schema"] == {
        "type": "string",
        "const": "OK",
    }
    assert "text/plain" in doc["paths"][one]["get"]["responses"]["404"]["content"]
    body = doc["components"]["schemas"]["MappingIn"]
    assert body["required"] == ["domain", "backends"]
    assert body["properties"]["backends"]["items"]["pattern"].startswith("^http://")
    routes_out = doc["components"]["schemas"]["RoutesOut"]["properties"]["routes"]
    assert routes_out["items"] == {"$ref": "#/components/schemas/MappingOut"}
