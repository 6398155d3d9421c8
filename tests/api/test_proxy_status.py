"""A proxy's ``status`` and ``errors``: "active" with no errors for what the API accepts;
"error" and the broken fields for a stored row that breaks a rule (not served)."""

from __future__ import annotations

import pytest
from tests.api.conftest import Api, assert_error
from tests.security.rows import write_by_hand


def _create(api: Api, hostname: str) -> dict[str, object]:
    r = api.client.post(
        "/v1/alpha/proxies", json={"proxy": {"hostname": hostname}}, headers=api.member
    )
    assert r.status_code == 201, r.text
    proxy: dict[str, object] = r.json()["proxy"]
    return proxy


def test_accepted_proxies_are_active(api: Api) -> None:
    proxy = _create(api, "ok.alpha.example.org")
    assert proxy["status"] == "active" and proxy["errors"] == []


def test_a_stored_row_that_breaks_rules_shows_every_broken_field(api: Api) -> None:
    proxy = _create(api, "bad.alpha.example.org")
    write_by_hand(
        api.service.store,
        str(proxy["id"]),
        session_persistence={"type": "cookie", "cookie_name": "s\r\nX-Injected: yes"},
        health_check={"method": "GET\r\nX: y", "path": "/\r\n"},
        hash_key="header:a b",
    )
    shown = api.client.get(f"/v1/alpha/proxies/{proxy['id']}", headers=api.reader)
    assert shown.status_code == 200, shown.text
    body = shown.json()["proxy"]
    assert body["status"] == "error"
    # One entry per option that breaks a rule: its first broken sub-field.
    assert [e["field"] for e in body["errors"]] == [
        "session_persistence.cookie_name",
        "health_check.method",
        "hash_key",
    ]
    assert all(e["message"] for e in body["errors"])
    listed = api.client.get("/v1/alpha/proxies", headers=api.reader).json()["proxies"]
    assert [p["status"] for p in listed] == ["error"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"session_persistence": {"type": "cookie", "cookie_name": "a\r\nb: c"}},
         "session_persistence.cookie_name"),
        ({"session_persistence": {"type": "app_cookie", "cookie_name": "a b"}},
         "session_persistence.cookie_name"),
        ({"health_check": {"method": "GET\r\nX: y"}}, "health_check.method"),
        ({"health_check": {"path": "/\r\nX: y"}}, "health_check.path"),
        ({"health_check": {"path": "/%zz"}}, "health_check.path"),
        ({"hash_key": "header:a\r\nb"}, "hash_key"),
    ],
)  # fmt: skip
def test_a_tenant_cannot_patch_in_a_string_outside_its_grammar(
    api: Api, fields: dict[str, object], field: str
) -> None:
    proxy = _create(api, "patch.alpha.example.org")
    r = api.client.patch(
        f"/v1/alpha/proxies/{proxy['id']}", json={"proxy": fields}, headers=api.member
    )
    assert_error(r, 422, field)
