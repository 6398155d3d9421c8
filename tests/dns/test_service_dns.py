"""The service keeps DNS records for every write path (native proxies, dynamicproxy
mappings, a source's tools), against a real BIND and a real store: claimed on create,
moved on rename, released when a hostname's last proxy goes; collisions refused with
409; a DNS failure commits nothing; a failed commit undoes the DNS change."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from portway.dns.plan import marker
from portway.dns.records import Rfc2136Records
from portway.dns.seam import NoDns
from portway.errors import ConflictError, DnsError
from portway.model import Project, Proxy
from portway.runtime.config import Listen
from portway.service import Actor, BackendSpec, Service
from portway.service.tools import ToolRouteSpec
from portway.store import Store, Transaction, open_store
from tests.conftest import TEST_POLICY
from tests.dns.bind import Bind, free_port

ADMIN = Actor.system("test")
A, AAAA = "192.0.2.80", "2001:db8::80"
BACKEND = (BackendSpec(address="127.0.0.1", port=8080),)


@pytest.fixture
def owner(request: pytest.FixtureRequest) -> str:
    """Each test (and dialect) has its own owner and names, so they share one BIND."""
    tag = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:6]
    return f"svc-{tag}-" + request.node.originalname.replace("_", "-")[5:40].strip("-")


def _service(store: Store, records: object) -> Service:
    service = Service(store, backend_policy=TEST_POLICY, dns=records)  # type: ignore[arg-type]
    service.create_project(ADMIN, "alpha")
    service.create_project(ADMIN, "beta")
    return service


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    store = open_store(store_url)
    yield store
    store.close()


@pytest.fixture
def service(bind: Bind, store: Store, owner: str) -> Service:
    return _service(store, Rfc2136Records(bind.config(owner=owner)))


def draft(hostname: str, path_prefix: str = "/") -> Proxy:
    return Proxy(id="", project="", hostname=hostname, path_prefix=path_prefix)


def hostnames(service: Service) -> set[str]:
    return {p.hostname for p in service.list_proxies(ADMIN, "alpha")}


def ours(bind: Bind, name: str, owner: str) -> bool:
    """``name`` has exactly Portway's records (read by zone transfer, not by a lookup
    that a wildcard could answer)."""
    zone = "apps.test" if name.endswith(".apps.test") else "cloud.test"
    return bind.names(zone).get(name) == {f"A {A}", f"AAAA {AAAA}", f"TXT {marker(owner)}"}


def absent(bind: Bind, name: str) -> bool:
    zone = "apps.test" if name.endswith(".apps.test") else "cloud.test"
    return name not in bind.names(zone)


def test_creating_a_proxy_adds_its_a_aaaa_and_marker(
    bind: Bind, service: Service, owner: str
) -> None:
    name = f"{owner}.cloud.test"
    service.create_proxy(ADMIN, "alpha", draft(name), BACKEND)
    assert bind.dig(name, "A") == {A}
    assert bind.dig(name, "AAAA") == {AAAA}
    assert bind.dig(name, "TXT") == {marker(owner)}
    assert ours(bind, name, owner)


def test_a_wildcard_proxy_gets_a_wildcard_record(bind: Bind, service: Service, owner: str) -> None:
    service.create_proxy(ADMIN, "alpha", draft(f"*.{owner}.cloud.test"), BACKEND)
    assert ours(bind, f"*.{owner}.cloud.test", owner)
    assert bind.dig(f"anything.{owner}.cloud.test", "A") == {A}


def test_renaming_a_proxy_moves_its_records(bind: Bind, service: Service, owner: str) -> None:
    old, new = f"{owner}.cloud.test", f"{owner}-new.cloud.test"
    proxy = service.create_proxy(ADMIN, "alpha", draft(old), BACKEND)
    service.update_proxy(ADMIN, "alpha", proxy.id, {"hostname": new})
    assert absent(bind, old)
    assert ours(bind, new, owner)
    # Across zones too: the record leaves one zone for the other.
    other = f"{owner}.apps.test"
    service.update_proxy(ADMIN, "alpha", proxy.id, {"hostname": other})
    assert absent(bind, new)
    assert ours(bind, other, owner)


def test_deleting_a_proxy_removes_its_records(bind: Bind, service: Service, owner: str) -> None:
    name = f"{owner}.cloud.test"
    proxy = service.create_proxy(ADMIN, "alpha", draft(name), BACKEND)
    service.delete_proxy(ADMIN, "alpha", proxy.id)
    assert absent(bind, name)
    assert bind.dig(name, "A") == set()


def test_a_hostname_keeps_its_records_until_its_last_proxy_goes(
    bind: Bind, service: Service, owner: str
) -> None:
    name = f"{owner}.cloud.test"
    root = service.create_proxy(ADMIN, "alpha", draft(name), BACKEND)
    api = service.create_proxy(ADMIN, "alpha", draft(name, "/api"), BACKEND)
    service.delete_proxy(ADMIN, "alpha", root.id)
    assert ours(bind, name, owner)
    # Renaming the last one away moves the name; renaming onto a used name claims nothing.
    elsewhere = f"{owner}-b.cloud.test"
    service.create_proxy(ADMIN, "alpha", draft(elsewhere), BACKEND)
    service.update_proxy(ADMIN, "alpha", api.id, {"hostname": elsewhere})
    assert absent(bind, name)
    assert ours(bind, elsewhere, owner)


def test_mappings_claim_move_and_release(bind: Bind, service: Service, owner: str) -> None:
    """The dynamicproxy writes: PUT creates, POST renames, DELETE removes."""
    old, new = f"{owner}.cloud.test", f"{owner}-renamed.cloud.test"
    service.add_mapping(ADMIN, "alpha", old, BACKEND, draft(old))
    assert ours(bind, old, owner)
    service.add_mapping(
        ADMIN, "alpha", old, (BackendSpec(address="127.0.0.2", port=80),), draft(old)
    )
    assert ours(bind, old, owner)  # an append leaves the name alone
    service.replace_mapping(ADMIN, "alpha", old, new, BACKEND)
    assert absent(bind, old)
    assert ours(bind, new, owner)
    mapping = service.get_mapping(ADMIN, "alpha", new)
    service.delete_proxy(ADMIN, "alpha", mapping.id)
    assert absent(bind, new)


def test_a_tool_registered_by_a_source_gets_records(
    bind: Bind, service: Service, owner: str
) -> None:
    tool = owner[:10]
    source = Actor.system("toolforge")
    spec = ToolRouteSpec(
        tool=tool, hostname=f"{tool}.apps.test", pattern="/", address="127.0.0.1", port=8000
    )
    service.register_tool_route(source, spec)
    assert ours(bind, f"{tool}.apps.test", owner)


def test_a_name_with_a_floating_ip_is_refused_and_nothing_is_stored(
    bind: Bind, service: Service
) -> None:
    with pytest.raises(ConflictError) as caught:
        service.create_proxy(ADMIN, "alpha", draft("floating.cloud.test"), BACKEND)
    assert caught.value.status == 409
    assert caught.value.field == "hostname"
    assert "floating.cloud.test already has DNS records Portway did not create" in str(caught.value)
    assert "A 192.0.2.10" in caught.value.message
    assert hostnames(service) == set()
    assert bind.names()["floating.cloud.test"] == {"A 192.0.2.10"}


def test_a_cname_blocks_a_rename_onto_it(bind: Bind, service: Service, owner: str) -> None:
    name = f"{owner}.cloud.test"
    proxy = service.create_proxy(ADMIN, "alpha", draft(name), BACKEND)
    with pytest.raises(ConflictError, match=r"CNAME floating\.cloud\.test\."):
        service.replace_mapping(ADMIN, "alpha", name, "alias.cloud.test", BACKEND)
    assert service.get_proxy(ADMIN, "alpha", proxy.id).hostname == name
    assert ours(bind, name, owner)
    assert bind.names()["alias.cloud.test"] == {"CNAME floating.cloud.test."}


def test_a_hostname_outside_the_dns_zones_needs_no_dns_server(store: Store) -> None:
    dead = Rfc2136Records(_dead_server_config())
    service = _service(store, dead)
    service.create_proxy(ADMIN, "alpha", draft("web.elsewhere.example"), BACKEND)
    assert hostnames(service) == {"web.elsewhere.example"}


def _dead_server_config() -> object:
    from portway.dns.config import DnsConfig

    return DnsConfig(
        server=Listen(host="127.0.0.1", port=free_port()),  # nothing listens there
        zones=("cloud.test",),
        key_name="portway-key",
        algorithm="hmac-sha256",
        secret="c2VjcmV0",
        addresses=(A,),
        timeout=1.0,
    )


def test_a_dns_server_that_is_down_fails_the_call_with_503_and_commits_nothing(
    store: Store,
) -> None:
    service = _service(store, Rfc2136Records(_dead_server_config()))  # type: ignore[arg-type]
    with pytest.raises(DnsError) as caught:
        service.create_proxy(ADMIN, "alpha", draft("down.cloud.test"), BACKEND)
    assert caught.value.status == 503
    assert "cannot reach DNS server 127.0.0.1:" in caught.value.message
    assert hostnames(service) == set()
    assert [c.action for c in service.list_changes(ADMIN, "alpha")] == ["create"]  # the project


def test_a_refused_tsig_key_fails_the_call_with_502_and_commits_nothing(
    bind: Bind, store: Store
) -> None:
    service = _service(store, Rfc2136Records(bind.config(secret="A" * 43 + "=")))
    with pytest.raises(DnsError) as caught:
        service.create_proxy(ADMIN, "alpha", draft("tsig.cloud.test"), BACKEND)
    assert caught.value.status == 502
    assert "TSIG" in caught.value.message or "BADSIG" in caught.value.message
    assert hostnames(service) == set()


def test_a_dns_failure_on_delete_keeps_the_proxy(bind: Bind, store: Store, owner: str) -> None:
    name = f"{owner}.cloud.test"
    good = _service(store, Rfc2136Records(bind.config(owner=owner)))
    proxy = good.create_proxy(ADMIN, "alpha", draft(name), BACKEND)
    broken = Service(
        store,
        backend_policy=TEST_POLICY,
        dns=Rfc2136Records(bind.config(owner=owner, secret="A" * 43 + "=")),
    )
    with pytest.raises(DnsError):
        broken.delete_proxy(ADMIN, "alpha", proxy.id)
    assert good.get_proxy(ADMIN, "alpha", proxy.id).hostname == name
    assert ours(bind, name, owner)


class RacedStore(Store):
    """A store whose commit fails the way a raced write makes it fail: just before the
    commit, a row that another writer took meanwhile (project ``alpha``) is inserted,
    and the database refuses it (IntegrityError → ConflictError)."""

    race = False

    @contextmanager
    def transaction(self, actor: str) -> Iterator[Transaction]:
        with super().transaction(actor) as tx:
            yield tx
            if self.race:
                tx.insert_project(Project(name="alpha"))


@pytest.fixture
def raced(tmp_path: Path) -> Iterator[RacedStore]:
    plain = open_store(f"sqlite:///{tmp_path / 'raced.db'}")
    store = RacedStore(plain.engine)
    yield store
    store.close()


def test_a_failed_commit_after_the_claim_removes_the_record_again(
    bind: Bind, raced: RacedStore, owner: str
) -> None:
    service = _service(raced, Rfc2136Records(bind.config(owner=owner)))
    name = f"{owner}.cloud.test"
    raced.race = True
    with pytest.raises(ConflictError, match="conflicts with an existing object"):
        service.create_proxy(ADMIN, "alpha", draft(name), BACKEND)
    raced.race = False
    assert absent(bind, name)
    assert hostnames(service) == set()


def test_a_failed_commit_after_a_rename_or_delete_puts_the_records_back(
    bind: Bind, raced: RacedStore, owner: str
) -> None:
    service = _service(raced, Rfc2136Records(bind.config(owner=owner)))
    old, new = f"{owner}.cloud.test", f"{owner}-new.cloud.test"
    proxy = service.create_proxy(ADMIN, "alpha", draft(old), BACKEND)
    raced.race = True
    with pytest.raises(ConflictError):
        service.update_proxy(ADMIN, "alpha", proxy.id, {"hostname": new})
    with pytest.raises(ConflictError):
        service.delete_proxy(ADMIN, "alpha", proxy.id)
    raced.race = False
    assert ours(bind, old, owner)
    assert absent(bind, new)
    assert hostnames(service) == {old}


def test_check_recreates_a_deleted_record_and_lists_strays_and_foreign_names(
    bind: Bind, service: Service, owner: str
) -> None:
    name = f"{owner}.cloud.test"
    service.create_proxy(ADMIN, "alpha", draft(name), BACKEND)
    bind.nsupdate(f"update delete {name}.")
    assert absent(bind, name)
    stray = f"{owner}-stray.cloud.test"
    service.dns.claim(stray)  # ours, but no proxy serves it
    report = service.check_dns(ADMIN)
    assert report.created == (name,)
    assert ours(bind, name, owner)
    assert stray in report.stray
    assert report.unfixed
    assert ours(bind, stray, owner)  # listed, not removed
    pruned = service.check_dns(ADMIN, prune=True)
    assert stray in pruned.removed
    assert absent(bind, stray)
    assert not service.check_dns(ADMIN).unfixed


def test_check_lists_a_served_hostname_that_foreign_records_hold(
    bind: Bind, store: Store, owner: str
) -> None:
    """A proxy made while DNS was not managed, on a name with a floating IP's A: the
    check reports it and leaves the record alone."""
    _service(store, NoDns()).create_proxy(ADMIN, "alpha", draft("floating.cloud.test"), BACKEND)
    checked = Service(store, dns=Rfc2136Records(bind.config(owner=owner))).check_dns(ADMIN)
    assert checked.conflicts == (("floating.cloud.test", "A 192.0.2.10"),)
    assert checked.unfixed
    assert checked.findings() == [
        "conflict floating.cloud.test: served, but it holds records Portway did not create:"
        " A 192.0.2.10"
    ]
    assert bind.names()["floating.cloud.test"] == {"A 192.0.2.10"}


def test_prune_spares_a_name_that_a_proxy_took_since_the_check_read_the_store(
    bind: Bind, store: Store, owner: str
) -> None:
    """A proxy is created on a stray name while the check runs (after it read the
    store): pruning, done under the write lock, must not remove that proxy's records."""
    records = Rfc2136Records(bind.config(owner=owner))
    taken, stray = f"{owner}-taken.cloud.test", f"{owner}-stray.cloud.test"
    records.claim(taken)
    records.claim(stray)
    meanwhile = _service(store, NoDns())

    class CreatedDuringTheCheck:
        def __getattr__(self, name: str) -> object:
            return getattr(records, name)

        def check(self, expected: object, *, prune: bool = False) -> object:
            report = records.check(expected, prune=prune)  # type: ignore[arg-type]
            meanwhile.create_proxy(ADMIN, "alpha", draft(taken), BACKEND)
            return report

    service = Service(store, dns=CreatedDuringTheCheck())  # type: ignore[arg-type]
    report = service.check_dns(ADMIN, prune=True)
    assert set(report.stray) == {taken, stray}
    assert report.removed == (stray,)
    assert ours(bind, taken, owner)
    assert absent(bind, stray)
