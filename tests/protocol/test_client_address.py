"""The client address Portway trusts: its peer, or the trusted-proxy chain's first
untrusted hop from the right."""

from __future__ import annotations

import pytest

from portway.protocol.forwarded import client_address, parse_networks

TRUSTED = parse_networks(["10.0.0.0/8", "2001:db8::/32"])


@pytest.mark.parametrize(
    ("peer", "xff", "client"),
    [
        ("198.51.100.1", b"6.6.6.6", "198.51.100.1"),  # an untrusted peer's claim is ignored
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", b"203.0.113.9", "203.0.113.9"),
        ("10.0.0.1", b"6.6.6.6, 203.0.113.9, 10.1.1.1", "203.0.113.9"),
        ("10.0.0.1", b"10.2.2.2, 10.1.1.1", "10.2.2.2"),  # all trusted: the leftmost
        ("10.0.0.1", b"203.0.113.9, garbage", "10.0.0.1"),  # stops at what is no address
        ("10.0.0.1", b"garbage, 10.1.1.1, 203.0.113.9", "203.0.113.9"),
        ("2001:db8::1", b"[2001:db9::5]", "2001:db9::5"),
        ("::ffff:10.0.0.1", b"203.0.113.9", "203.0.113.9"),
        ("10.0.0.1", b"\xff\xfe", "10.0.0.1"),
    ],
)
def test_client_address(peer: str, xff: bytes | None, client: str) -> None:
    assert client_address(peer, xff, TRUSTED) == client
