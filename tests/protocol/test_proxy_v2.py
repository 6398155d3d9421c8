"""PROXY protocol v2 headers, byte for byte against proxy-protocol.txt §2.2."""

from __future__ import annotations

from portway.protocol.proxy_v2 import LOCAL_HEADER, SIGNATURE, header


def test_the_signature_is_the_specifications_twelve_bytes() -> None:
    assert bytes.fromhex("0D0A0D0A000D0A515549540A") == SIGNATURE


def test_an_ipv4_connection() -> None:
    got = header(("192.0.2.10", 51234), ("198.51.100.1", 8772))
    assert got == (
        bytes.fromhex("0D0A0D0A000D0A515549540A")
        + b"\x21"  # version 2, PROXY
        + b"\x11"  # AF_INET, STREAM
        + b"\x00\x0c"  # 12 bytes of addresses
        + bytes([192, 0, 2, 10])
        + bytes([198, 51, 100, 1])
        + (51234).to_bytes(2, "big")
        + (8772).to_bytes(2, "big")
    )
    assert len(got) == 16 + 12


def test_an_ipv6_connection() -> None:
    got = header(("2001:db8::1", 1), ("::1", 443))
    assert got[12:16] == b"\x21\x21\x00\x24"  # PROXY, AF_INET6 + STREAM, 36 bytes
    assert got[16:32] == bytes.fromhex("20010db8000000000000000000000001")
    assert got[32:48] == bytes(15) + b"\x01"
    assert got[48:] == b"\x00\x01\x01\xbb"


def test_mixed_families_or_non_ip_peers_say_local() -> None:
    assert header(("192.0.2.1", 1), ("::1", 2)) == LOCAL_HEADER
    assert header(("unknown", 0), ("127.0.0.1", 2)) == LOCAL_HEADER
    assert LOCAL_HEADER == SIGNATURE + b"\x20\x00\x00\x00"
