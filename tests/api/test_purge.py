"""POST /v1/{project}/proxies/{proxy}/purge: member role, checked input, and the count
the data plane answers (here a recording stand-in for the handle; the real path to the
workers is tests/runtime/test_worker_purge.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from tests.api.conftest import Api, assert_error

from portway.api import create_app
from portway.cache.store import Purge
from portway.errors import ValidationError

BASE = {"hostname": "cache.alpha.example.org", "cache": {"enabled": True}}


@pytest.fixture
def purges(api: Api) -> Iterator[tuple[TestClient, list[tuple[str, Purge]]]]:
    seen: list[tuple[str, Purge]] = []

    def purge(proxy_id: str, wanted: Purge) -> int:
        seen.append((proxy_id, wanted))
        return 3

    app = create_app(api.service, purge=purge)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, seen


def _proxy(api: Api) -> Any:
    created = api.client.post("/v1/alpha/proxies", json={"proxy": BASE}, headers=api.member)
    assert created.status_code == 201, created.text
    return created.json()["proxy"]


def _purge(client: TestClient, proxy_id: str, headers: dict[str, str], **body: Any) -> Any:
    return client.post(f"/v1/alpha/proxies/{proxy_id}/purge", json={"purge": body}, headers=headers)


def test_a_member_purges_urls_prefixes_and_keys(api: Api, purges: Any) -> None:
    client, seen = purges
    proxy = _proxy(api)
    response = _purge(
        client,
        proxy["id"],
        api.member,
        urls=["https://Cache.alpha.example.org:8443/a?x=1", "/b"],
        prefixes=["/static/"],
        keys=["product-42"],
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"purge": {"purged": 3}}
    assert seen == [
        (
            proxy["id"],
            Purge(
                urls=((b"cache.alpha.example.org", b"/a?x=1"), (None, b"/b")),
                prefixes=(b"/static/",),
                tags=("product-42",),
            ),
        )
    ]


def test_a_reader_may_not_purge_and_another_project_sees_nothing(api: Api, purges: Any) -> None:
    client, seen = purges
    proxy = _proxy(api)
    assert_error(_purge(client, proxy["id"], api.reader, prefixes=["/"]), 403)
    assert_error(_purge(client, proxy["id"], api.other, prefixes=["/"]), 404)
    assert seen == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "purge"),
        ({"urls": ["ftp://x/y"]}, "purge.urls"),
        ({"urls": ["relative"]}, "purge.urls"),
        ({"urls": ["/a\r\nX: 1"]}, "purge.urls"),
        ({"prefixes": ["static"]}, "purge.prefixes"),
        ({"keys": ["two words"]}, "purge.keys"),
    ],
)
def test_bad_purges_are_422_naming_the_field(
    api: Api, purges: Any, body: dict[str, Any], field: str
) -> None:
    client, seen = purges
    proxy = _proxy(api)
    assert_error(_purge(client, proxy["id"], api.member, **body), 422, field)
    assert seen == []


def test_too_many_items_are_refused_before_any_rule(api: Api, purges: Any) -> None:
    client, _ = purges
    proxy = _proxy(api)
    assert _purge(client, proxy["id"], api.member, keys=["k"] * 257).status_code in (400, 422)


def test_a_purge_the_data_plane_cannot_carry_out_is_422_saying_why(api: Api) -> None:
    """nginx cannot purge by prefix (drivers/nginx_cache.py): the API says so rather than
    answering a count that did not happen."""

    def purge(proxy_id: str, wanted: Purge) -> int:
        raise ValidationError("the nginx data plane cannot purge by prefix", field="purge.prefixes")

    with TestClient(create_app(api.service, purge=purge), raise_server_exceptions=False) as client:
        proxy = _proxy(api)
        error = assert_error(_purge(client, proxy["id"], api.member, prefixes=["/s/"]), 422)
        assert error["field"] == "purge.prefixes" and "nginx" in str(error["message"])
