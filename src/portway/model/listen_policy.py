"""Which extra ports tenants may claim for their proxies: the operator's listen policy.

``--listen-ports 8000-8999,8772,0.0.0.0:8773`` gives ports and ranges, each optionally on
an address (default: every address the shared HTTP listener binds, see ``ListenPolicy``).
A proxy's ``listen_port`` must be one of them and never one of Portway's own ports (API,
metrics, the shared listeners, the Toolforge listeners): those are ``reserved`` whatever
the ranges say, so a tenant can never take over, or shadow, a listener Portway needs.

Pure: the service checks a proxy against it when it is written, and the data planes ask
it on which addresses to open a claimed port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from portway.errors import ConfigError, ForbiddenError

MAX_PORT = 65535


@dataclass(frozen=True, slots=True)
class PortRange:
    """Ports ``low``..``high`` (inclusive) on ``address``."""

    address: str
    low: int
    high: int

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.low <= port <= self.high

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        ports = str(self.low) if self.low == self.high else f"{self.low}-{self.high}"
        return f"{host}:{ports}"


@dataclass(frozen=True, slots=True)
class ListenPolicy:
    """The allowed ranges and the ports that are Portway's own. Empty: no extra ports."""

    ranges: tuple[PortRange, ...] = ()
    reserved: frozenset[int] = frozenset()

    def addresses(self, port: int) -> tuple[str, ...]:
        """The addresses ``port`` is opened on, in the order the operator gave them."""
        found = (r.address for r in self.ranges if port in r)
        return tuple(dict.fromkeys(found))

    def opens(self, port: int) -> tuple[str, ...]:
        """The addresses a data plane opens ``port`` on: none for one of Portway's own
        ports, whatever the ranges say (the second wall behind ``check``)."""
        return () if port in self.reserved else self.addresses(port)

    def check(self, port: int, field: str = "listen_port") -> int:
        """``port`` when a tenant may claim it, else ForbiddenError naming ``field``."""
        if port in self.reserved:
            raise ForbiddenError(f"{field} {port} is one of Portway's own ports", field=field)
        if not self.addresses(port):
            allowed = ", ".join(str(r) for r in self.ranges) or "none"
            raise ForbiddenError(
                f"{field} {port} is not a port the operator allows (--listen-ports: {allowed})",
                field=field,
            )
        return port


def _port(text: str, flag: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_PORT:
        raise ConfigError(f"{flag}: {text!r} is not a port from 1 to {MAX_PORT}", field=flag)
    return int(text)


def _address(text: str, flag: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ConfigError(f"{flag}: {text!r} is not an IP address", field=flag) from None


def parse_range(item: str, default_address: str, flag: str) -> PortRange:
    """``PORT``, ``LOW-HIGH``, ``ADDR:PORT[-HIGH]`` or ``[V6]:PORT[-HIGH]``."""
    text = item.strip()
    address = default_address
    if text.startswith("["):
        host, sep, text = text[1:].partition("]:")
        if not sep:
            raise ConfigError(f"{flag}: expected [ADDRESS]:PORTS, got {item!r}", field=flag)
        address = _address(host, flag)
    elif ":" in text:
        host, _, text = text.rpartition(":")
        address = _address(host, flag)
    low_text, sep, high_text = text.partition("-")
    low = _port(low_text, flag)
    high = _port(high_text, flag) if sep else low
    if high < low:
        raise ConfigError(f"{flag}: range {item!r} ends before it starts", field=flag)
    return PortRange(address, low, high)


def parse_ranges(
    values: Iterable[str], *, default_address: str, flag: str
) -> tuple[PortRange, ...]:
    """Comma-separated or repeated items, in order; empty items are ignored."""
    items = (item for value in values for item in value.split(",") if item.strip())
    return tuple(parse_range(item, default_address, flag) for item in items)
