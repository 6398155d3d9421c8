"""Rfc2136Records against a real BIND: records checked with dig and zone transfers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from portway.dns.plan import marker
from portway.dns.records import Rfc2136Records
from portway.errors import ConflictError, DnsError
from portway.runtime.config import Listen
from tests.dns.bind import Bind, free_port

A, AAAA = "192.0.2.80", "2001:db8::80"


@pytest.fixture
def owner(request: pytest.FixtureRequest) -> str:
    """Each test has its own owner and names, so they share one BIND."""
    return request.node.name.replace("_", "-")[5:60].strip("-").lower()


@pytest.fixture
def records(bind: Bind, owner: str) -> Rfc2136Records:
    return Rfc2136Records(bind.config(owner=owner))


def mine(bind: Bind, hostname: str, owner: str) -> set[str]:
    """What a name of ours holds at its exact name, read by AXFR."""
    zone = "apps.test" if hostname.endswith(".apps.test") else "cloud.test"
    return bind.names(zone).get(hostname, set())


def expected(owner: str, *addresses: str, ttl: int = 120) -> set[str]:
    found = {f"TXT {marker(owner)}"}
    for address in addresses or (A, AAAA):
        found.add(f"{'AAAA' if ':' in address else 'A'} {address}")
    return found


def test_claim_creates_a_aaaa_and_the_ownership_marker(
    bind: Bind, records: Rfc2136Records, owner: str
) -> None:
    done = records.claim(f"{owner}.cloud.test")
    assert done.created == (f"{owner}.cloud.test",)
    assert bind.dig(f"{owner}.cloud.test", "A") == {A}
    assert bind.dig(f"{owner}.cloud.test", "AAAA") == {AAAA}
    assert bind.dig(f"{owner}.cloud.test", "TXT") == {marker(owner)}
    assert mine(bind, f"{owner}.cloud.test", owner) == expected(owner)


def test_claiming_a_name_that_is_ours_again_changes_nothing(
    bind: Bind, records: Rfc2136Records, owner: str
) -> None:
    records.claim(f"{owner}.cloud.test")
    serial = bind.dig("cloud.test", "SOA")
    assert records.claim(f"{owner}.cloud.test").created == ()
    assert bind.dig("cloud.test", "SOA") == serial
    assert mine(bind, f"{owner}.cloud.test", owner) == expected(owner)


def test_a_wildcard_proxy_gets_a_wildcard_record(
    bind: Bind, records: Rfc2136Records, owner: str
) -> None:
    records.claim(f"*.{owner}.cloud.test")
    assert bind.dig(f"anything.{owner}.cloud.test", "A") == {A}
    assert mine(bind, f"*.{owner}.cloud.test", owner) == expected(owner)
    # An exact name beside the wildcard is a name of its own, not a collision.
    assert records.claim(f"exact.{owner}.cloud.test").created == (f"exact.{owner}.cloud.test",)
    assert records.release(f"exact.{owner}.cloud.test").removed
    assert records.release(f"exact.{owner}.cloud.test").removed == ()  # only the wildcard left
    assert bind.dig(f"exact.{owner}.cloud.test", "A") == {A}  # answered by the wildcard


@pytest.mark.parametrize(
    ("name", "named"),
    [
        ("floating.cloud.test", "A 192.0.2.10"),
        ("alias.cloud.test", "CNAME floating.cloud.test."),
        ("other.cloud.test", 'TXT "heritage=portway,owner=another-cluster"'),
        ("notes.cloud.test", 'TXT "v=spf1 -all"'),
    ],
)
def test_a_name_with_records_portway_did_not_create_is_refused_naming_them(
    bind: Bind, records: Rfc2136Records, name: str, named: str
) -> None:
    before = bind.names()[name]
    with pytest.raises(ConflictError) as caught:
        records.claim(name)
    assert caught.value.status == 409
    assert named in caught.value.message
    assert caught.value.message.startswith(f"{name} already has DNS records Portway did not")
    assert bind.names()[name] == before


def test_release_removes_only_portway_records(
    bind: Bind, records: Rfc2136Records, owner: str
) -> None:
    records.claim(f"{owner}.cloud.test")
    assert records.release(f"{owner}.cloud.test").removed == (f"{owner}.cloud.test",)
    assert f"{owner}.cloud.test" not in bind.names()
    assert records.release(f"{owner}.cloud.test").removed == ()  # gone already: no error
    before = bind.names()["floating.cloud.test"]
    assert records.release("floating.cloud.test").removed == ()
    assert bind.names()["floating.cloud.test"] == before


def test_release_keeps_an_operators_txt_record_beside_ours(
    bind: Bind, records: Rfc2136Records, owner: str
) -> None:
    name = f"{owner}.cloud.test"
    records.claim(name)
    bind.nsupdate(f'update add {name} 300 TXT "google-site-verification=x"')
    assert records.release(name).removed == (name,)
    assert mine(bind, name, owner) == {'TXT "google-site-verification=x"'}


def test_move_within_a_zone_is_one_update(bind: Bind, records: Rfc2136Records, owner: str) -> None:
    old, new = f"{owner}.cloud.test", f"new-{owner}.cloud.test"
    records.claim(old)
    serial = int(next(iter(bind.dig("cloud.test", "SOA"))).split()[2])
    done = records.move(old, new)
    assert (done.created, done.removed) == ((new,), (old,))
    assert old not in bind.names()
    assert mine(bind, new, owner) == expected(owner)
    assert int(next(iter(bind.dig("cloud.test", "SOA"))).split()[2]) == serial + 1


def test_move_across_zones(bind: Bind, records: Rfc2136Records, owner: str) -> None:
    old, new = f"{owner}.cloud.test", f"{owner}.apps.test"
    records.claim(old)
    assert records.move(old, new).created == (new,)
    assert old not in bind.names()
    assert mine(bind, new, owner) == expected(owner)


def test_move_onto_a_foreign_name_is_refused_and_keeps_the_old_name(
    bind: Bind, records: Rfc2136Records, owner: str
) -> None:
    old = f"{owner}.cloud.test"
    records.claim(old)
    with pytest.raises(ConflictError, match=r"CNAME floating\.cloud\.test\."):
        records.move(old, "alias.cloud.test")
    assert mine(bind, old, owner) == expected(owner)


def test_hostnames_outside_the_zones_are_left_alone(bind: Bind, owner: str) -> None:
    # A server that is down proves no query or update was even tried.
    down = Rfc2136Records(bind.config(owner=owner, server=_closed_port()))
    assert down.claim("web.example.org").created == ()
    assert down.release("web.example.org").removed == ()
    assert down.claim("cloud.test").created == ()  # the apex is not below the zone


def test_check_recreates_missing_repairs_and_lists_strays(
    bind: Bind, records: Rfc2136Records, owner: str
) -> None:
    keep, lost, stray = (f"{n}-{owner}.cloud.test" for n in ("keep", "lost", "stray"))
    for name in (keep, lost, stray):
        records.claim(name)
    bind.nsupdate(f"update delete {lost}")  # someone removed it by hand
    report = records.check({keep, lost, "floating.cloud.test"})
    assert report.created == (lost,)
    assert report.stray == (stray,)
    assert report.removed == ()
    assert report.conflicts == (("floating.cloud.test", "A 192.0.2.10"),)
    assert mine(bind, lost, owner) == expected(owner)
    assert mine(bind, stray, owner) == expected(owner)  # listed, not deleted
    assert "other.cloud.test" in bind.names()  # another cluster's names are not strays


def test_check_with_prune_removes_strays_only(
    bind: Bind, records: Rfc2136Records, owner: str
) -> None:
    keep, stray = f"keep-{owner}.cloud.test", f"stray-{owner}.apps.test"
    records.claim(keep)
    records.claim(stray)
    report = records.check({keep}, prune=True)
    assert (report.stray, report.removed) == ((stray,), (stray,))
    assert stray not in bind.names("apps.test")
    assert mine(bind, keep, owner) == expected(owner)
    assert "floating.cloud.test" in bind.names()


def test_check_repairs_records_after_the_addresses_change(bind: Bind, owner: str) -> None:
    name = f"{owner}.cloud.test"
    Rfc2136Records(bind.config(owner=owner)).claim(name)
    moved = Rfc2136Records(bind.config(owner=owner, addresses=("192.0.2.99",), ttl=60))
    report = moved.check({name})
    assert report.repaired == (name,)
    assert mine(bind, name, owner) == expected(owner, "192.0.2.99")
    assert bind.dig(name, "AAAA") == set()


def test_bind_stopped_gives_a_503_dns_error(own_bind: Bind, owner: str) -> None:
    records = Rfc2136Records(own_bind.config(owner=owner))
    records.claim(f"{owner}.cloud.test")
    own_bind.stop()
    with pytest.raises(DnsError) as caught:
        records.claim(f"next-{owner}.cloud.test")
    assert caught.value.status == 503
    assert caught.value.message == (
        f"cannot reach DNS server 127.0.0.1:{own_bind.port} for the update of zone "
        "cloud.test: Connection refused"
    )
    with pytest.raises(DnsError, match="cannot reach DNS server"):
        records.release(f"{owner}.cloud.test")


def test_a_server_that_does_not_answer_gives_a_503_after_the_timeout(
    bind: Bind, owner: str
) -> None:
    with _silent_server() as port:
        records = Rfc2136Records(bind.config(owner=owner, server=port, timeout=0.5))
        with pytest.raises(DnsError) as caught:
            records.claim(f"{owner}.cloud.test")
    assert caught.value.status == 503
    assert "did not answer the update of zone cloud.test within 0.5 s" in caught.value.message


def test_a_wrong_tsig_secret_gives_a_502_naming_the_key(bind: Bind, owner: str) -> None:
    records = Rfc2136Records(bind.config(owner=owner, secret="A" * 43 + "="))
    with pytest.raises(DnsError) as caught:
        records.claim(f"{owner}.cloud.test")
    assert caught.value.status == 502
    assert "refused the TSIG key 'portway-key'" in caught.value.message
    assert f"{owner}.cloud.test" not in bind.names()


def test_a_zone_that_does_not_grant_the_key_gives_a_502(bind: Bind, owner: str) -> None:
    records = Rfc2136Records(bind.config(owner=owner, zones=("locked.test",)))
    with pytest.raises(DnsError) as caught:
        records.claim(f"{owner}.locked.test")
    assert caught.value.status == 502
    assert "refused the update of zone locked.test: REFUSED" in caught.value.message


def _closed_port() -> Listen:
    return Listen(host="127.0.0.1", port=free_port())


@contextmanager
def _silent_server() -> Iterator[Listen]:
    """A TCP listener that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # the kernel accepts; nothing ever reads or writes
        yield Listen(host="127.0.0.1", port=sock.getsockname()[1])
