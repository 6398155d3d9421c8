"""Quotas in the one write path, over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from tests.conftest import TEST_POLICY

from portway.errors import PortwayError, QuotaExceededError, ValidationError
from portway.model import Proxy
from portway.model.quota import UNLIMITED, Quota
from portway.service import Actor, BackendSpec, Service
from portway.service.hostnames import ProxyRows
from portway.store import Store, open_store

ADMIN = Actor.system("test")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def service_of(store: Store, **defaults: int) -> Service:
    service = Service(store, backend_policy=TEST_POLICY, quota_defaults=Quota(**defaults))
    service.create_project(ADMIN, "alpha")
    return service


def proxy(name: str, project: str = "alpha") -> Proxy:
    return Proxy(id="", project="", hostname=f"{name}.{project}.example.org")


def backend(n: int) -> BackendSpec:
    return BackendSpec(address=f"10.0.0.{n}", port=80)


def test_a_create_over_the_proxies_quota_is_refused_with_limit_and_use(store: Store) -> None:
    service = service_of(store)
    service.set_quota(ADMIN, "alpha", Quota(proxies=1))
    service.create_proxy(ADMIN, "alpha", proxy("one"))
    with pytest.raises(QuotaExceededError) as refused:
        service.create_proxy(ADMIN, "alpha", proxy("two"))
    err = refused.value
    assert (err.status, err.quota, err.limit, err.in_use) == (403, "proxies", 1, 1)
    assert "proxies" in err.message and "limit 1" in err.message
    assert [p.hostname for p in service.list_proxies(ADMIN, "alpha")] == ["one.alpha.example.org"]


def test_the_node_default_applies_until_the_project_has_its_own(store: Store) -> None:
    service = service_of(store, proxies=0)
    with pytest.raises(QuotaExceededError):
        service.create_proxy(ADMIN, "alpha", proxy("one"))
    service.set_quota(ADMIN, "alpha", Quota(proxies=UNLIMITED))
    for name in ("one", "two", "three"):
        service.create_proxy(ADMIN, "alpha", proxy(name))
    own, limits, use = service.get_quota(ADMIN, "alpha")
    assert own.proxies == UNLIMITED and limits.proxies == UNLIMITED and use["proxies"] == 3


def test_backends_per_proxy_holds_for_create_add_and_replace(store: Store) -> None:
    service = service_of(store, backends_per_proxy=2)
    with pytest.raises(QuotaExceededError) as refused:
        service.create_proxy(ADMIN, "alpha", proxy("big"), [backend(1), backend(2), backend(3)])
    assert refused.value.quota == "backends_per_proxy" and refused.value.in_use == 0
    created = service.create_proxy(ADMIN, "alpha", proxy("web"), [backend(1)])
    service.add_backend(ADMIN, "alpha", created.id, backend(2))
    with pytest.raises(QuotaExceededError):
        service.add_backend(ADMIN, "alpha", created.id, backend(3))
    with pytest.raises(QuotaExceededError):
        service.replace_backends(ADMIN, "alpha", created.id, [backend(n) for n in (4, 5, 6)])
    # The same number of other backends is no growth.
    service.replace_backends(ADMIN, "alpha", created.id, [backend(7), backend(8)])
    assert len(service.list_backends(ADMIN, "alpha", created.id)) == 2


def test_a_lowered_quota_keeps_what_exists_and_lets_it_shrink(store: Store) -> None:
    service = service_of(store)
    created = service.create_proxy(ADMIN, "alpha", proxy("web"), [backend(n) for n in (1, 2, 3)])
    service.set_quota(ADMIN, "alpha", Quota(backends_per_proxy=1))
    service.replace_backends(ADMIN, "alpha", created.id, [backend(1), backend(2)])
    service.update_backend(ADMIN, "alpha", created.id, "10.0.0.1:80", weight=3)
    with pytest.raises(QuotaExceededError) as refused:
        service.add_backend(ADMIN, "alpha", created.id, backend(9))
    assert (refused.value.limit, refused.value.in_use) == (1, 2)


def test_deleting_frees_the_quota(store: Store) -> None:
    service = service_of(store, proxies=1)
    first = service.create_proxy(ADMIN, "alpha", proxy("one"))
    service.delete_proxy(ADMIN, "alpha", first.id)
    service.create_proxy(ADMIN, "alpha", proxy("two"))


@pytest.mark.parametrize("value", [-2, True, 2**63, "3", 1.5])
def test_a_quota_outside_its_range_is_a_validation_error(store: Store, value: Any) -> None:
    service = service_of(store)
    with pytest.raises(ValidationError) as refused:
        service.set_quota(ADMIN, "alpha", Quota(proxies=value))
    assert refused.value.field == "proxies"


def test_only_admins_see_and_set_quotas(store: Store) -> None:
    service = service_of(store)
    member = Actor.system("tenant", project="alpha")
    with pytest.raises(PortwayError) as refused:
        service.set_quota(member, "alpha", Quota(proxies=100))
    assert refused.value.status == 403
    with pytest.raises(PortwayError):
        service.get_quota(member, "alpha")


class SlowCommits(Service):
    """Each proxy write waits before its quota check and commit, holding the store's
    write lock: without that lock, a second create would count the same use meanwhile."""

    @contextmanager
    def _proxy_write(self, actor: Actor, project: str | None = None) -> Iterator[ProxyRows]:
        with super()._proxy_write(actor, project) as rows:
            yield rows
            time.sleep(0.3)


def test_two_concurrent_creates_do_not_both_pass_a_quota_of_one(store: Store) -> None:
    service = SlowCommits(store, backend_policy=TEST_POLICY, quota_defaults=Quota(proxies=1))
    service.create_project(ADMIN, "alpha")
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def create(name: str) -> None:
        start.wait()
        try:
            service.create_proxy(ADMIN, "alpha", proxy(name))
            outcomes.append("created")
        except QuotaExceededError:
            outcomes.append("refused")

    threads = [threading.Thread(target=create, args=(n,)) for n in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["created", "refused"]
    assert len(service.list_proxies(ADMIN, "alpha")) == 1
