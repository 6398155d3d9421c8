"""Banned ranges: IPv4, IPv6, IPv4-mapped IPv6, and what is not an address."""

from __future__ import annotations

from portway.limits.ranges import Ranges


def test_addresses_in_and_out_of_the_ranges() -> None:
    ranges = Ranges(["192.0.2.0/24", "2001:db8::/32", "198.51.100.7"])
    assert "192.0.2.200" in ranges and "198.51.100.7" in ranges
    assert "2001:db8::1" in ranges and "::ffff:192.0.2.9" in ranges
    assert "192.0.3.1" not in ranges and "2001:db9::1" not in ranges
    assert "fe80::1%eth0" not in ranges
    assert "not-an-address" not in ranges and "" not in ranges


def test_no_ranges_is_false_and_matches_nothing() -> None:
    empty = Ranges([])
    assert not empty and "127.0.0.1" not in empty
    assert Ranges(["10.0.0.1/8"])  # host bits are allowed, as nginx's deny
