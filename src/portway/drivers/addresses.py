"""Listener addresses as nginx's ``listen`` and HAProxy's ``bind`` take them (pure)."""

from __future__ import annotations

import ipaddress

from portway.errors import ConfigError


def listen_addresses(pairs: tuple[tuple[str, int], ...], daemon: str) -> list[str]:
    """``host:port`` (``[v6]:port``) for each pair; ``daemon`` names the plane in errors.
    Only IP addresses: a name would be resolved by the daemon, once, at load."""
    out = []
    for host, port in pairs:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(f"{daemon} listen address {host!r} is not an IP address") from None
        if not 0 < port < 65536:
            raise ConfigError(f"{daemon} listen port {port} is out of range")
        out.append(f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}")
    return out
