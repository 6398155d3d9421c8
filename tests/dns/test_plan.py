"""The pure DNS planner: markers, whose a name is, what ``check`` does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from portway.dns.plan import (
    Desired,
    RRset,
    assess,
    marker,
    marker_owner,
    needs_repair,
    plan_check,
    zone_of,
)

DESIRED = Desired(addresses=("192.0.2.80", "2001:db8::80"), ttl=120, owner="alpha")


def rr(rdtype: str, *values: str, ttl: int = 120) -> RRset:
    return RRset(rdtype, ttl, frozenset(values))


def ours() -> dict[str, RRset]:
    return dict(DESIRED.rrsets())


owners = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,62}", fullmatch=True)


@given(owners)
def test_a_marker_names_its_owner(owner: str) -> None:
    assert marker_owner(marker(owner)) == owner


def test_a_marker_is_external_dns_style_heritage_and_owner() -> None:
    assert marker("alpha") == '"heritage=portway,owner=alpha"'


def test_other_txt_records_are_not_markers() -> None:
    for text in (
        '"v=spf1 -all"',
        '"heritage=external-dns,owner=alpha"',
        '"heritage=portway"',
        '"heritage=portway,owner=a" "more"',
        "heritage=portway,owner=alpha",
    ):
        assert marker_owner(text) is None, text


def test_desired_records_split_addresses_into_a_and_aaaa() -> None:
    assert DESIRED.rrsets() == {
        "A": rr("A", "192.0.2.80"),
        "AAAA": rr("AAAA", "2001:db8::80"),
        "TXT": rr("TXT", '"heritage=portway,owner=alpha"'),
    }


def test_a_name_without_records_is_free() -> None:
    assert assess({}, "alpha").free


def test_a_name_with_our_marker_is_ours() -> None:
    assert assess(ours(), "alpha").ours


def test_a_floating_ip_record_is_foreign_and_named() -> None:
    found = assess({"A": rr("A", "192.0.2.10")}, "alpha")
    assert (found.state, found.found) == ("foreign", "A 192.0.2.10")


def test_a_cname_is_foreign_and_named() -> None:
    found = assess({"CNAME": rr("CNAME", "floating.cloud.test.")}, "alpha")
    assert found.found == "CNAME floating.cloud.test."


def test_another_clusters_marker_is_foreign() -> None:
    records = {"A": rr("A", "192.0.2.11"), "TXT": rr("TXT", marker("beta"))}
    found = assess(records, "alpha")
    assert not found.ours
    assert found.found == 'A 192.0.2.11; TXT "heritage=portway,owner=beta"'


def test_ours_with_the_right_records_needs_no_repair() -> None:
    records = ours()
    records["TXT"] = rr("TXT", marker("alpha"), '"v=spf1 -all"')  # other TXT beside: fine
    assert not needs_repair(records, DESIRED)


def test_ours_with_old_addresses_or_ttl_needs_repair() -> None:
    assert needs_repair({**ours(), "A": rr("A", "192.0.2.1")}, DESIRED)
    assert needs_repair({k: v for k, v in ours().items() if k != "AAAA"}, DESIRED)
    assert needs_repair({**ours(), "TXT": rr("TXT", marker("alpha"), ttl=60)}, DESIRED)


def test_a_hostname_belongs_to_the_longest_zone_it_lies_below() -> None:
    zones = ("cloud.test", "eqiad1.cloud.test")
    assert zone_of("web.eqiad1.cloud.test", zones) == "eqiad1.cloud.test"
    assert zone_of("*.web.cloud.test", zones) == "cloud.test"
    assert zone_of("cloud.test", zones) is None  # the apex holds SOA and NS: never ours
    assert zone_of("web.example.org", zones) is None
    assert zone_of("webcloud.test", zones) is None


def test_check_creates_missing_repairs_wrong_lists_strays_and_foreign() -> None:
    zone = {
        "cloud.test": {"SOA": rr("SOA", "ns. h. 1 1 1 1 1"), "NS": rr("NS", "ns.cloud.test.")},
        "ok.cloud.test": ours(),
        "old.cloud.test": {**ours(), "A": rr("A", "192.0.2.1")},
        "gone.cloud.test": ours(),
        "floating.cloud.test": {"A": rr("A", "192.0.2.10")},
        "theirs.cloud.test": {"A": rr("A", "192.0.2.11"), "TXT": rr("TXT", marker("beta"))},
    }
    expected = {"ok.cloud.test", "old.cloud.test", "new.cloud.test", "floating.cloud.test"}
    plan = plan_check(zone, expected, DESIRED)
    assert plan.create == ("new.cloud.test",)
    assert plan.repair == ("old.cloud.test",)
    assert plan.stray == ("gone.cloud.test",)  # not theirs.cloud.test: another owner's
    assert plan.conflicts == (("floating.cloud.test", "A 192.0.2.10"),)
