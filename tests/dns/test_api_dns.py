"""DNS through both APIs (native and dynamicproxy) and ``POST /v1/dns/check``, over a
real BIND: a collision is a 409 JSON error naming the record, a DNS failure 502/503,
and nothing is committed."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from portway.api import create_app
from portway.dns.plan import marker
from portway.dns.records import Rfc2136Records
from portway.dns.seam import DnsRecords, NoDns
from portway.model import Role
from portway.service import Service
from portway.store import Store, open_store
from tests.conftest import TEST_POLICY
from tests.dns.bind import Bind

OWNER = "api-dns"


@dataclass
class Client:
    http: TestClient
    service: Service
    admin: dict[str, str]
    member: dict[str, str]

    def proxies(self) -> list[str]:
        found = self.http.get("/v1/alpha/proxies", headers=self.member).json()["proxies"]
        return [p["hostname"] for p in found]


Factory = Callable[[DnsRecords], Client]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Factory]:
    opened: list[tuple[TestClient, Store]] = []

    def make(records: DnsRecords) -> Client:
        store = open_store(f"sqlite:///{tmp_path / f'portway{len(opened)}.db'}")
        service = Service(store, backend_policy=TEST_POLICY, dns=records)
        secret = service.ensure_admin_token(None)
        assert secret is not None
        admin = service.authenticate(secret)
        service.create_project(admin, "alpha")
        member = service.create_token(admin, "alpha", Role.MEMBER)[1]
        http = TestClient(create_app(service), raise_server_exceptions=False)
        opened.append((http, store))
        return Client(http, service, {"X-Auth-Token": secret}, {"X-Auth-Token": member})

    yield make
    for http, store in opened:
        http.close()
        store.close()


@pytest.fixture
def client(bind: Bind, make_client: Factory) -> Client:
    return make_client(Rfc2136Records(bind.config(owner=OWNER)))


def create(client: Client, hostname: str) -> httpx.Response:
    body = {"proxy": {"hostname": hostname, "backends": [{"address": "127.0.0.1", "port": 80}]}}
    return client.http.post("/v1/alpha/proxies", json=body, headers=client.member)


def put_mapping(client: Client, domain: str) -> httpx.Response:
    body = {"domain": domain, "backends": ["http://127.0.0.1:80"]}
    # As wmcs-webproxy sends it: a JSON body without a Content-Type.
    url = "/dynamicproxy-api/v1/alpha/mapping"
    return client.http.put(url, content=json.dumps(body), headers=client.member)


def test_native_create_of_a_floating_ip_name_is_409_naming_the_record(client: Client) -> None:
    answer = create(client, "floating.cloud.test")
    assert answer.status_code == 409
    assert answer.json() == {
        "error": {
            "code": 409,
            "title": "Conflict",
            "message": "floating.cloud.test already has DNS records Portway did not create:"
            " A 192.0.2.10",
            "field": "hostname",
        }
    }
    assert client.proxies() == []


def test_dynamicproxy_put_of_a_cname_is_409_and_nothing_is_stored(client: Client) -> None:
    answer = put_mapping(client, "alias.cloud.test")
    assert answer.status_code == 409
    error = answer.json()["error"]
    assert error["field"] == "hostname"
    assert "CNAME floating.cloud.test." in error["message"]
    assert client.proxies() == []


def test_native_create_update_delete_keep_the_records(bind: Bind, client: Client) -> None:
    made = create(client, "api-one.cloud.test")
    assert made.status_code == 201
    assert bind.dig("api-one.cloud.test", "TXT") == {marker(OWNER)}
    changed = client.http.patch(
        "/v1/alpha/proxies/api-one.cloud.test",
        json={"proxy": {"hostname": "api-two.cloud.test"}},
        headers=client.member,
    )
    assert changed.status_code == 200, changed.text
    assert "api-one.cloud.test" not in bind.names()
    assert bind.dig("api-two.cloud.test", "A") == {"192.0.2.80"}
    gone = client.http.delete("/v1/alpha/proxies/api-two.cloud.test", headers=client.member)
    assert gone.status_code == 204
    assert "api-two.cloud.test" not in bind.names()


def test_a_refused_key_is_502_and_nothing_is_stored(bind: Bind, make_client: Factory) -> None:
    client = make_client(Rfc2136Records(bind.config(owner=OWNER, secret="A" * 43 + "=")))
    answer = create(client, "api-refused.cloud.test")
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["title"] == "Bad Gateway"
    assert f"DNS server 127.0.0.1:{bind.port}" in error["message"]
    assert client.proxies() == []
    # The dynamicproxy API answers the same status, as Portway's JSON error.
    mapped = put_mapping(client, "api-refused.cloud.test")
    assert mapped.status_code == 502
    assert mapped.json()["error"]["code"] == 502


def test_dns_check_is_for_admins_and_reports_findings(bind: Bind, client: Client) -> None:
    assert create(client, "api-check.cloud.test").status_code == 201
    bind.nsupdate("update delete api-check.cloud.test.")
    refused = client.http.post("/v1/dns/check", json={}, headers=client.member)
    assert refused.status_code == 403
    answer = client.http.post("/v1/dns/check", json={}, headers=client.admin)
    assert answer.status_code == 200, answer.text
    check = answer.json()["check"]
    assert check["managed"] is True
    assert "api-check.cloud.test" in check["created"]
    assert bind.dig("api-check.cloud.test", "A") == {"192.0.2.80"}
    bad = client.http.post("/v1/dns/check", json={"check": {"prune": 1}}, headers=client.admin)
    assert bad.status_code == 400


def test_dns_check_without_dns_says_so(make_client: Factory) -> None:
    client = make_client(NoDns())
    answer = client.http.post("/v1/dns/check", json={}, headers=client.admin)
    assert answer.json()["check"]["managed"] is False
    assert answer.json()["check"]["ok"] is True
