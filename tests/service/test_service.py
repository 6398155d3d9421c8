"""Service behaviour over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from portway.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    ValidationError,
)
from portway.model import Proxy, Role
from portway.service import Actor, BackendSpec, Service
from portway.store import open_store

ADMIN = Actor.system("test")


@pytest.fixture
def service(store_url: str) -> Iterator[Service]:
    store = open_store(store_url)
    svc = Service(store)
    svc.create_project(ADMIN, "alpha")
    svc.create_project(ADMIN, "beta")
    yield svc
    store.close()


def _draft(hostname: str, path_prefix: str = "/") -> Proxy:
    return Proxy(id="", project="", hostname=hostname, path_prefix=path_prefix)


def test_generated_admin_token_is_returned_only_on_first_start(store_url: str) -> None:
    store = open_store(store_url)
    secret = Service(store).ensure_admin_token(None)
    assert secret
    assert Service(store).ensure_admin_token(None) is None
    assert Service(store).authenticate(secret).is_admin
    store.close()


def test_env_admin_token_is_accepted_and_rotating_it_revokes_the_old(store_url: str) -> None:
    store = open_store(store_url)
    service = Service(store)
    assert service.ensure_admin_token("first-secret") is None
    assert service.authenticate("first-secret").role is Role.ADMIN
    revision = store.current_revision()
    assert service.ensure_admin_token("first-secret") is None
    assert store.current_revision() == revision  # an unchanged restart writes nothing
    service.ensure_admin_token("second-secret")
    assert service.authenticate("second-secret").is_admin
    with pytest.raises(AuthError):
        service.authenticate("first-secret")
    store.close()


def test_token_secret_is_stored_hashed(service: Service) -> None:
    _token, secret = service.create_token(ADMIN, "alpha", Role.MEMBER)
    with service.store.engine.connect() as conn:
        import sqlalchemy as sa

        stored = conn.execute(sa.text("SELECT secret_hash FROM tokens")).scalars().all()
    assert secret not in stored and all(len(h) == 64 for h in stored)
    assert service.authenticate(secret).project == "alpha"


def test_source_provenance_is_recorded_on_proxies_and_backends(service: Service) -> None:
    toolforge = Actor.system("toolforge")
    proxy = service.create_proxy(
        toolforge, "alpha", _draft("tool.example.org"), [BackendSpec(address="10.0.0.1")]
    )
    assert proxy.source == "toolforge" and proxy.backends[0].source == "toolforge"
    assert proxy.backends[0].port == proxy.backend_port
    change = service.list_changes(ADMIN, "alpha", limit=1)[0]
    assert change.actor == "toolforge"


def test_write_bumps_revision_and_feeds_the_reconciler(service: Service) -> None:
    start = service.store.current_revision()
    proxy = service.create_proxy(ADMIN, "alpha", _draft("a.example.org"))
    service.add_backend(ADMIN, "alpha", proxy.id, BackendSpec(address="10.0.0.2", port=81))
    revision, changed = service.store.changed_proxy_ids(start)
    assert revision == start + 2 and changed == {proxy.id}
    assert service.store.load_proxies([proxy.id])[0].revision == revision


def test_hostname_ref_picks_root_prefix_or_the_only_proxy(service: Service) -> None:
    tool = service.create_proxy(ADMIN, "alpha", _draft("t.example.org", "/tool"))
    assert service.get_proxy(ADMIN, "alpha", "t.example.org").id == tool.id
    root = service.create_proxy(ADMIN, "alpha", _draft("t.example.org"))
    assert service.get_proxy(ADMIN, "alpha", "t.example.org").id == root.id
    with pytest.raises(NotFoundError):
        service.get_proxy(ADMIN, "beta", root.id)


def test_renaming_into_another_projects_hostname_is_a_conflict(service: Service) -> None:
    service.create_proxy(ADMIN, "beta", _draft("b.example.org"))
    mine = service.create_proxy(ADMIN, "alpha", _draft("a.example.org"))
    with pytest.raises(ConflictError):
        service.update_proxy(ADMIN, "alpha", mine.id, {"hostname": "b.example.org"})
    with pytest.raises(ValidationError):
        service.update_proxy(ADMIN, "alpha", mine.id, {"project": "beta"})


def test_concurrent_claims_of_one_hostname_have_one_winner(service: Service) -> None:
    results: list[str] = []

    def claim(project: str) -> None:
        try:
            service.create_proxy(ADMIN, project, _draft("race.example.org"))
            results.append(project)
        except ConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=claim, args=(p,)) for p in ("alpha", "beta") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = {r for r in results if r != "conflict"}
    assert len(winners) == 1 and results.count("conflict") == 5


def test_reader_and_foreign_member_are_refused(service: Service) -> None:
    reader = Actor(name="r", role=Role.READER, project="alpha")
    foreign = Actor(name="f", role=Role.MEMBER, project="beta")
    with pytest.raises(ForbiddenError):
        service.create_proxy(reader, "alpha", _draft("r.example.org"))
    with pytest.raises(NotFoundError):
        service.create_proxy(foreign, "alpha", _draft("f.example.org"))
    with pytest.raises(NotFoundError):
        service.list_proxies(foreign, "nosuch")


def test_project_with_proxies_cannot_be_deleted(service: Service) -> None:
    service.create_proxy(ADMIN, "alpha", _draft("a.example.org"))
    with pytest.raises(ConflictError):
        service.delete_project(ADMIN, "alpha")


def test_replacing_backends_keeps_ids_of_those_that_stay(service: Service) -> None:
    proxy = service.create_proxy(
        ADMIN, "alpha", _draft("a.example.org"), [BackendSpec(address="10.0.0.1", port=80)]
    )
    kept = proxy.backends[0].id
    new = service.replace_backends(
        ADMIN,
        "alpha",
        proxy.id,
        [BackendSpec(address="10.0.0.1", port=80, weight=5), BackendSpec(address="10.0.0.2")],
    ).backends
    assert [b.id == kept for b in new] == [True, False]
    assert new[0].weight == 5
    with pytest.raises(ValidationError):
        service.replace_backends(
            ADMIN, "alpha", proxy.id, [BackendSpec(address="h.x"), BackendSpec(address="h.x")]
        )
