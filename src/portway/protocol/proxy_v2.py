"""The PROXY protocol version 2 header (HAProxy's proxy-protocol.txt, section 2.2), sans-IO.

Sent first on a relayed connection so that the backend learns the client's address:

    12 bytes  signature \\r\\n\\r\\n\\0\\r\\nQUIT\\n
     1 byte   version (high nibble, 2) and command (low nibble: 0 LOCAL, 1 PROXY)
     1 byte   address family (high nibble: 1 INET, 2 INET6) and transport (1 STREAM)
     2 bytes  length of the address block that follows, network order
    IPv4: source address (4), destination address (4), source port (2), destination port (2)
    IPv6: the same with 16-byte addresses

When the two ends are not of one IP family (or not IP at all), the header says LOCAL
with no address: the backend then uses the connection's own addresses, as the
specification asks of a receiver.
"""

from __future__ import annotations

import ipaddress
import struct

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_PROXY = 0x21  # version 2, command PROXY
_LOCAL = 0x20  # version 2, command LOCAL
_TCP4 = 0x11
_TCP6 = 0x21
LOCAL_HEADER = SIGNATURE + bytes((_LOCAL, 0x00)) + b"\x00\x00"


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # no IPv6 zone id on the wire
    except ValueError:
        return None


def header(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """The v2 header for a TCP connection from ``source`` to ``destination`` (the
    client and the address it connected to), each an (address, port) pair."""
    src, dst = _ip(source[0]), _ip(destination[0])
    if src is None or dst is None or src.version != dst.version:
        return LOCAL_HEADER
    family = _TCP4 if src.version == 4 else _TCP6
    block = src.packed + dst.packed + struct.pack("!HH", source[1], destination[1])
    return SIGNATURE + bytes((_PROXY, family)) + struct.pack("!H", len(block)) + block
