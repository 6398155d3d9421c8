"""An API client over a fresh store (SQLite and PostgreSQL) with admin, member, reader."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from tests.conftest import TEST_POLICY

from portway.api import create_app
from portway.model import Role
from portway.service import Service
from portway.store import open_store
from portway.store.keyring import Keyring


@dataclass
class Api:
    client: TestClient
    service: Service
    admin: dict[str, str]
    member: dict[str, str]
    reader: dict[str, str]
    other: dict[str, str]  # a member of project "beta"


@pytest.fixture
def api(store_url: str) -> Iterator[Api]:
    store = open_store(store_url, Keyring.generate())
    service = Service(store, backend_policy=TEST_POLICY)
    secret = service.ensure_admin_token(None)
    assert secret is not None
    actor = service.authenticate(secret)
    service.create_project(actor, "alpha")
    service.create_project(actor, "beta")

    def token(project: str, role: Role) -> dict[str, str]:
        return {"X-Auth-Token": service.create_token(actor, project, role)[1]}

    with TestClient(create_app(service), raise_server_exceptions=False) as client:
        yield Api(
            client=client,
            service=service,
            admin={"X-Auth-Token": secret},
            member=token("alpha", Role.MEMBER),
            reader=token("alpha", Role.READER),
            other=token("beta", Role.MEMBER),
        )
    store.close()


def assert_error(response: object, status: int, field: str | None = None) -> dict[str, object]:
    """The response is our JSON error with ``status`` (and ``field``, when given)."""
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == status and error["title"] and error["message"]
    if field is not None:
        assert error.get("field") == field, error
    return dict(error)
