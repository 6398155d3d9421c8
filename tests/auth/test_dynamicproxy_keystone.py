"""The dynamicproxy API of a real ``portway serve`` behind a real Keystone: clients find
it as OpenStack's do (a keystoneauth1 session, the catalog's ``proxy`` endpoint with
``$(tenant_id)s`` filled in) and call it with their Keystone tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from keystoneauth1 import session as ks_session

from tests.auth.conftest import session_for
from tests.auth.keystone_server import SERVICE_PASSWORD, SERVICE_USER, Keystone
from tests.integration.harness import Backend, Portway, start_backend, wait_routed

pytestmark = pytest.mark.timeout(600)  # the session's first Keystone test starts it
PROXY = {"service_type": "proxy", "interface": "public"}


def call(
    session: ks_session.Session, method: str, path: str, body: object = None
) -> requests.Response:
    """A call to the catalog's proxy endpoint, JSON sent as wmcs-webproxy sends it."""
    data = None if body is None else json.dumps(body)
    response: requests.Response = session.request(
        path, method, endpoint_filter=PROXY, data=data, raise_exc=False, authenticated=True
    )
    assert "Content-Type" not in response.request.headers
    return response


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = start_backend("ks")
    yield b
    b.stop()


@pytest.fixture
def portway(keystone: Keystone, tmp_path: Path) -> Iterator[Portway]:
    password = tmp_path / "keystone-password"
    password.write_text(SERVICE_PASSWORD + "\n")
    pw = Portway(
        tmp_path / "data",
        extra=[
            "--keystone-url", keystone.url,
            "--keystone-user", SERVICE_USER,
            "--keystone-password-file", str(password),
        ],
    )  # fmt: skip
    pw.api_port = keystone.api_port  # where the catalog's proxy endpoint points
    pw.start()
    yield pw
    pw.stop()


def test_a_keystone_client_manages_its_mappings_through_the_catalog(
    keystone: Keystone, portway: Portway, backend: Backend
) -> None:
    alice = session_for(keystone, "alice", "alpha")
    alpha = keystone.project_ids["alpha"]
    endpoint = alice.get_endpoint(**PROXY)
    assert endpoint == f"{portway.api_url}/dynamicproxy-api/v1/{alpha}"

    url = f"http://127.0.0.1:{backend.port}"
    put = call(alice, "PUT", "/mapping", {"domain": "ks.alpha.test", "backends": [url]})
    assert (put.status_code, put.text) == (200, "")
    wait_routed(portway, "ks.alpha.test")
    assert portway.get("ks.alpha.test").json()["backend"] == "ks"
    listed = call(alice, "GET", "/mapping")
    assert listed.json() == {"routes": [{"domain": "ks.alpha.test", "backends": [url]}]}

    # The Keystone project became a Portway project; the mapping is one of its proxies,
    # which the same token sees through the native API.
    projects = portway.api("GET", "/v1/projects").json()["projects"]
    assert alpha in {p["name"] for p in projects}
    native = portway.api("GET", f"/v1/{alpha}/proxies", token=alice.get_token())
    assert [p["hostname"] for p in native.json()["proxies"]] == ["ks.alpha.test"]

    delete = call(alice, "DELETE", "/mapping/ks.alpha.test")
    assert (delete.status_code, delete.text) == (200, "deleted")
    wait_routed(portway, "ks.alpha.test", status=404)


def test_keystone_roles_and_projects_decide_what_a_token_may_do(
    keystone: Keystone, portway: Portway
) -> None:
    alpha = keystone.project_ids["alpha"]
    body = {"domain": "roles.alpha.test", "backends": ["http://127.0.0.1:9"]}
    adam, rita, bob = (
        session_for(keystone, u, p)
        for u, p in (("adam", "alpha"), ("rita", "alpha"), ("bob", "beta"))
    )
    assert call(adam, "PUT", "/mapping", body).status_code == 200

    # A reader reads, and may not write.
    assert call(rita, "GET", "/mapping/roles.alpha.test").status_code == 200
    refused = call(rita, "DELETE", "/mapping/roles.alpha.test")
    assert refused.status_code == 403

    # Another project's token, sent to alpha's URL, is refused on every route.
    base = f"{portway.api_url}/dynamicproxy-api/v1/{alpha}"
    for method, path in [("GET", "/mapping"), ("GET", "/zones"), ("PUT", "/mapping")]:
        data = json.dumps(body) if method == "PUT" else None
        answer = bob.request(base + path, method, data=data, raise_exc=False)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["error"]["field"] == "project"
    # ...and its own endpoint shows none of alpha's mappings.
    assert call(bob, "GET", "/mapping").json() == {"routes": []}
