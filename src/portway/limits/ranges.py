"""Banned client ranges: whether an address falls in any of a set of CIDRs.

Matching parses the address once and tests each network; a node bans a handful of ranges,
so a linear scan over them is cheaper than any index. IPv4-mapped IPv6 addresses (a
dual-stack listener's view of an IPv4 client) match the IPv4 ranges.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Ranges:
    """An immutable set of networks; ``address in ranges`` tests membership."""

    __slots__ = ("_v4", "_v6")

    def __init__(self, cidrs: Iterable[str]) -> None:
        """``cidrs`` already validated (ValueError otherwise)."""
        networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]
        self._v4 = tuple(n for n in networks if n.version == 4)
        self._v6 = tuple(n for n in networks if n.version == 6)

    def __bool__(self) -> bool:
        return bool(self._v4 or self._v6)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str):
            return False
        try:
            addr = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address):
            if addr.ipv4_mapped is None:
                return any(addr in n for n in self._v6)
            addr = addr.ipv4_mapped
        return any(addr in n for n in self._v4)
