"""A committed write answers with what it wrote, whatever lands after its commit."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from tests.conftest import TEST_POLICY

from portway.api import create_app
from portway.service import Actor, Service
from portway.store import open_store
from portway.store.keyring import Keyring

RACER = Actor.system("racer")


class DeleteLandsAfterEachWrite(Service):
    """A real service whose backend writes are each followed, once committed, by another
    caller's delete of the proxy: the interleaving a concurrent DELETE can produce between
    a handler's write and anything the handler reads afterwards."""

    def _then_delete(self, project: str, ref: str) -> None:
        self.delete_proxy(RACER, project, ref)

    def add_backend(self, actor: Actor, project: str, ref: str, *args: Any, **kw: Any) -> Any:
        result = super().add_backend(actor, project, ref, *args, **kw)
        self._then_delete(project, ref)
        return result

    def replace_backends(self, actor: Actor, project: str, ref: str, *args: Any) -> Any:
        result = super().replace_backends(actor, project, ref, *args)
        self._then_delete(project, ref)
        return result

    def update_backend(self, actor: Actor, project: str, ref: str, *args: Any, **kw: Any) -> Any:
        result = super().update_backend(actor, project, ref, *args, **kw)
        self._then_delete(project, ref)
        return result


@pytest.fixture
def racing(store_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    store = open_store(store_url, Keyring.generate())
    service = DeleteLandsAfterEachWrite(store, backend_policy=TEST_POLICY)
    secret = service.ensure_admin_token(None)
    assert secret is not None
    service.create_project(service.authenticate(secret), "alpha")
    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        yield client, {"X-Auth-Token": secret}
    store.close()


Request = Callable[[TestClient, str, dict[str, str]], Any]
BACKENDS = "/v1/alpha/proxies/{}/backends"


def _add(client: TestClient, ref: str, auth: dict[str, str]) -> Any:
    body = {"backend": {"address": "10.0.0.7", "port": 81}}
    return client.post(BACKENDS.format(ref), json=body, headers=auth)


def _replace(client: TestClient, ref: str, auth: dict[str, str]) -> Any:
    body = {"backends": [{"address": "10.0.0.7", "port": 81}]}
    return client.put(BACKENDS.format(ref), json=body, headers=auth)


def _update(client: TestClient, ref: str, auth: dict[str, str]) -> Any:
    body = {"backend": {"weight": 0}}
    return client.patch(BACKENDS.format(ref) + "/10.0.0.5:80", json=body, headers=auth)


@pytest.mark.parametrize(
    ("request_", "status"),
    [(_add, 201), (_replace, 200), (_update, 200)],
    ids=["add", "replace", "update"],
)
@pytest.mark.parametrize("by", ["id", "hostname"])
def test_committed_backend_write_answers_what_it_wrote_despite_a_later_delete(
    racing: tuple[TestClient, dict[str, str]], request_: Request, status: int, by: str
) -> None:
    client, auth = racing
    proxy = {"hostname": "wiki.test", "backends": [{"address": "10.0.0.5", "port": 80}]}
    created = client.post("/v1/alpha/proxies", json={"proxy": proxy}, headers=auth).json()
    ref = created["proxy"]["id"] if by == "id" else "wiki.test"
    response = request_(client, ref, auth)
    assert response.status_code == status, response.text
    body = response.json()
    written = body["backend"] if "backend" in body else body["backends"][0]
    if request_ is _update:
        assert (written["address"], written["weight"]) == ("10.0.0.5", 0)
    else:
        assert (written["address"], written["port"]) == ("10.0.0.7", 81)
    assert written["health"] == "unknown"
    # The delete did land: the write was answered from its own transaction, not a re-read.
    assert client.get(f"/v1/alpha/proxies/{ref}", headers=auth).status_code == 404
