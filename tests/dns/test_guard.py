"""Nothing half done: a DNS change whose store commit fails is undone (real BIND, real
store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from portway.dns.guard import dns_changes
from portway.dns.records import Rfc2136Records
from portway.errors import ConflictError, DnsError, StoreError
from portway.model import Project
from portway.store import Store, open_store
from tests.dns.bind import Bind


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'portway.db'}")
    with store.transaction("test") as tx:
        tx.insert_project(Project(name="alpha"))
        tx.record(kind="project", action="create", object_id="alpha", project="alpha")
    yield store
    store.close()


@pytest.fixture
def records(bind: Bind, request: pytest.FixtureRequest) -> Rfc2136Records:
    return Rfc2136Records(bind.config(owner=request.node.name[5:40].replace("_", "-")))


def test_a_failed_commit_removes_the_record_it_claimed(
    bind: Bind, records: Rfc2136Records, store: Store
) -> None:
    name = "guard-commit.cloud.test"
    with (
        pytest.raises(StoreError, match="without a change record"),
        dns_changes(records) as dns,
        store.transaction("test") as tx,
    ):
        dns.claim(name)
        assert bind.dig(name, "A") == {"192.0.2.80"}
        tx.insert_project(Project(name="beta"))  # no change record: the commit fails
    assert name not in bind.names()
    assert store.read(lambda r: r.get_project("beta")) is None


def test_a_store_conflict_after_the_claim_removes_the_record(
    bind: Bind, records: Rfc2136Records, store: Store
) -> None:
    name = "guard-conflict.cloud.test"
    with (
        pytest.raises(ConflictError),
        dns_changes(records) as dns,
        store.transaction("test") as tx,
    ):
        dns.claim(name)
        tx.insert_project(Project(name="alpha"))  # exists: IntegrityError → 409
    assert name not in bind.names()


def test_an_undo_removes_only_what_the_change_created(
    bind: Bind, records: Rfc2136Records, store: Store
) -> None:
    """A second proxy on a name that is ours already (another path prefix) claims
    nothing new; its failed commit must not take the first proxy's record away."""
    name = "guard-shared.cloud.test"
    records.claim(name)
    with (
        pytest.raises(StoreError),
        dns_changes(records) as dns,
        store.transaction("test") as tx,
    ):
        dns.claim(name)
        tx.insert_project(Project(name="gamma"))
    assert bind.dig(name, "A") == {"192.0.2.80"}


def test_a_failed_commit_after_a_release_restores_the_record(
    bind: Bind, records: Rfc2136Records, store: Store
) -> None:
    name = "guard-release.cloud.test"
    records.claim(name)
    with (
        pytest.raises(StoreError),
        dns_changes(records) as dns,
        store.transaction("test") as tx,
    ):
        dns.release(name)
        assert bind.dig(name, "A") == set()
        tx.insert_project(Project(name="delta"))
    assert bind.dig(name, "A") == {"192.0.2.80"}


def test_a_failed_commit_after_a_move_moves_it_back(
    bind: Bind, records: Rfc2136Records, store: Store
) -> None:
    old, new = "guard-old.cloud.test", "guard-new.apps.test"
    records.claim(old)
    with (
        pytest.raises(StoreError),
        dns_changes(records) as dns,
        store.transaction("test") as tx,
    ):
        dns.move(old, new)
        tx.insert_project(Project(name="epsilon"))
    assert bind.dig(old, "A") == {"192.0.2.80"}
    assert new not in bind.names("apps.test")


def test_a_dns_failure_commits_nothing(bind: Bind, store: Store) -> None:
    broken = Rfc2136Records(bind.config(secret="A" * 43 + "="))
    with pytest.raises(DnsError), dns_changes(broken) as dns, store.transaction("test") as tx:
        tx.insert_project(Project(name="zeta"))
        tx.record(kind="project", action="create", object_id="zeta", project="zeta")
        dns.claim("guard-dns.cloud.test")
    assert store.read(lambda r: r.get_project("zeta")) is None
