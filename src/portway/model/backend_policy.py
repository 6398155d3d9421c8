"""Which backend addresses tenants may point Portway at: the operator's backend policy.

A backend is an address Portway connects to on a tenant's behalf, from inside the
operator's network. Left unchecked, a tenant could aim it at Portway's own API or
metrics (and publish them through the public data plane), at the cloud's metadata
service (instance credentials), or at services bound to the node's loopback interface.

Rules, in the order ``check`` applies them to one IP address and port:

1. Portway's own listeners (API, HTTP, HTTPS, metrics) are refused, whatever else the
   operator allows. A listener on a wildcard address (``0.0.0.0``, ``::``) is reachable
   on every loopback address and through ``0.0.0.0``, so its port is refused on those.
2. ``ALWAYS_DENIED`` (``0.0.0.0/8``, link-local, metadata services, multicast, reserved,
   unspecified) can never be allowed.
3. ``deny`` networks are refused (deny wins over allow).
4. Loopback is refused unless an ``allow`` network that lies inside loopback names it
   (``127.0.0.0/8``, ``127.0.0.1/32``, ``::1/128``); a broad ``0.0.0.0/0`` does not.
5. When ``allow`` is not empty, only addresses inside it are accepted.

IPv6 addresses that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
``64:ff9b::/96``, 6to4 ``2002::/16``) are checked as that IPv4 address too, since the
packets end up there. The checks are pure, so the service (when a backend is written)
and the data plane (right before connecting, after DNS) share one definition.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from portway.errors import ConfigError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)
ALWAYS_DENIED: tuple[tuple[Network, str], ...] = tuple(
    (ipaddress.ip_network(cidr), why)
    for cidr, why in (
        ("0.0.0.0/8", "'this network' (0.0.0.0 reaches the node itself)"),
        ("169.254.0.0/16", "link-local (the cloud metadata service is 169.254.169.254)"),
        ("100.100.100.200/32", "a cloud metadata service"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved or broadcast"),
        ("::/128", "the unspecified address"),
        ("fe80::/10", "link-local"),
        ("fd00:ec2::254/128", "a cloud metadata service"),
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_V4_ANY = ipaddress.ip_address("0.0.0.0")
_V6_ANY = ipaddress.ip_address("::")


def parse_ip(value: str | Address) -> Address | None:
    """An IP address (an IPv6 zone suffix dropped), or None if ``value`` is not one."""
    if not isinstance(value, str):
        return value
    try:
        return ipaddress.ip_address(value.split("%", 1)[0])
    except ValueError:
        return None


def _views(ip: Address) -> tuple[Address, ...]:
    """``ip`` and the IPv4 address it carries, if any: both must pass."""
    if isinstance(ip, ipaddress.IPv4Address):
        return (ip,)
    if ip.ipv4_mapped is not None:
        return (ip.ipv4_mapped,)  # the kernel connects to the IPv4 address itself
    if ip in _NAT64:
        return (ip, ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        return (ip, ip.sixtofour)
    return (ip,)


def _within_loopback(net: Network) -> bool:
    return any(net.version == loop.version and net.subnet_of(loop) for loop in LOOPBACK)  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True, slots=True)
class BackendPolicy:
    """The operator's rules for backend addresses; the default is the strict one.

    ``own`` lists Portway's listeners as (address, port); an unspecified address
    (``0.0.0.0`` or ``::``) stands for a listener on all addresses.
    """

    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()
    own: tuple[tuple[Address, int], ...] = ()
    _loopback_allowed: tuple[Network, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        loop = tuple(n for n in self.allow if _within_loopback(n))
        object.__setattr__(self, "_loopback_allowed", loop)

    @classmethod
    def build(
        cls,
        *,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        listeners: Iterable[tuple[str, int]] = (),
    ) -> BackendPolicy:
        """From CIDR strings and listener (host, port) pairs; bad input is a ConfigError."""
        return cls(
            allow=_networks(allow, "--backend-allow"),
            deny=_networks(deny, "--backend-deny"),
            own=tuple(own for host, port in listeners for own in _listener(host, port)),
        )

    def check(self, ip: str | Address, port: int) -> str | None:
        """None when a backend may connect to ``ip``:``port``, else the reason it may not."""
        addr = parse_ip(ip)
        if addr is None:
            return f"{ip} is not an IP address"
        for view in _views(addr):
            reason = self._check_one(view, port)
            if reason is not None:
                return reason
        return None

    def check_backend(self, address: str, port: int) -> str | None:
        """The check a backend gets when it is written: IP literals (also the numeric
        forms the resolver reads as IPv4, such as ``127.1`` or ``0x7f000001``) and the
        ``localhost`` names are checked now; other hostnames when the data plane
        connects, after resolution (DNS answers change, so that is where it counts)."""
        name = address.lower().removesuffix(".")
        addr = parse_ip(name[1:-1] if name.startswith("[") else name)
        if addr is None:
            with contextlib.suppress(OSError):  # not a numeric form either
                addr = ipaddress.IPv4Address(socket.inet_aton(name))
        if addr is not None:
            return self.check(addr, port)
        if name == "localhost" or name.endswith(".localhost"):  # RFC 6761: always loopback
            return self.check("127.0.0.1", port) or self.check("::1", port)
        return None

    def check_local(self, port: int) -> str | None:
        """For a connection that turned out to reach this node itself (its local and
        peer address are equal): refused when a wildcard listener of Portway has that
        port, because the node's own addresses cannot all be known in advance."""
        for host, own_port in self.own:
            if own_port == port and host.is_unspecified:
                return f"port {port} on this node is Portway's own listener"
        return None

    def _check_one(self, ip: Address, port: int) -> str | None:
        if self._is_own(ip, port):
            return f"{ip}:{port} is Portway's own listener"
        for net, why in ALWAYS_DENIED:
            if ip in net:
                return f"{ip} is {why}; backends may never use it"
        if any(ip in net for net in self.deny):
            return f"{ip} is refused by the operator's backend policy (--backend-deny)"
        if ip.is_loopback:
            if any(ip in net for net in self._loopback_allowed):
                return None
            cidr = "127.0.0.0/8" if ip.version == 4 else "::1/128"
            return f"{ip} is a loopback address; the operator may allow it (--backend-allow {cidr})"
        if self.allow and not any(ip in net for net in self.allow):
            return f"{ip} is outside the operator's allowed backend networks (--backend-allow)"
        return None

    def _is_own(self, ip: Address, port: int) -> bool:
        for host, own_port in self.own:
            if own_port != port:
                continue
            if ip == host:
                return True
            # A wildcard listener answers on loopback and on 0.0.0.0 too; a loopback
            # listener is refused on the whole loopback range (harmless, and simpler).
            if (host.is_unspecified or host.is_loopback) and (ip.is_loopback or ip.is_unspecified):
                return True
        return False


def _networks(cidrs: Iterable[str], flag: str) -> tuple[Network, ...]:
    out = []
    for cidr in cidrs:
        try:
            net = ipaddress.ip_network(cidr.strip(), strict=False)
        except ValueError:
            raise ConfigError(f"{flag}: {cidr!r} is not a CIDR", field=flag) from None
        for denied, why in ALWAYS_DENIED:
            if net.version == denied.version and net.subnet_of(denied):  # type: ignore[arg-type]
                raise ConfigError(f"{flag}: {cidr} is {why} and can never be allowed", field=flag)
        out.append(net)
    return tuple(out)


def _listener(host: str, port: int) -> tuple[tuple[Address, int], ...]:
    """A listener's (address, port) pairs: "localhost" is both loopback addresses."""
    if host == "localhost":
        return ((ipaddress.ip_address("127.0.0.1"), port), (ipaddress.ip_address("::1"), port))
    addr = parse_ip(host)
    if addr is None:
        raise ConfigError(f"listener {host!r} is not an IP address")
    # A dual-stack "::" listener also takes IPv4: list it under both wildcards.
    if addr == _V6_ANY:
        return ((_V6_ANY, port), (_V4_ANY, port))
    return ((addr, port),)
