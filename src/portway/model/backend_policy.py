"""Which backend addresses tenants may point Portway at: the operator's backend policy.

A backend is an address Portway connects to on a tenant's behalf, from inside the
operator's network. Left unchecked, a tenant could aim it at Portway's own API or
metrics (and publish them through the public data plane), at the cloud's metadata
service (instance credentials), or at services bound to the node's loopback interface.

Rules, in the order ``check`` applies them to one IP address and port:

1. Portway's own listeners (API, HTTP, HTTPS, metrics, and the ports of
   ``--listen-ports`` that proxies may claim) are refused, whatever else the operator
   allows. A listener on a wildcard address (``0.0.0.0``, ``::``) is reachable
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
# Networks as (version, first, last) integers: a check is then a few int comparisons,
# not a dozen ``ip in network`` calls (~5 µs each), on every new backend connection.
Span = tuple[int, int, int]
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


def _spans(nets: Iterable[Network]) -> tuple[Span, ...]:
    return tuple((n.version, int(n.network_address), int(n.broadcast_address)) for n in nets)


def _inside(spans: tuple[Span, ...], version: int, value: int) -> bool:
    return any(v == version and first <= value <= last for v, first, last in spans)


_LOOPBACK_SPANS = _spans(LOOPBACK)
_DENIED_SPANS = tuple((_spans([net])[0], why) for net, why in ALWAYS_DENIED)


def _within_loopback(net: Network) -> bool:
    return any(net.version == loop.version and net.subnet_of(loop) for loop in LOOPBACK)  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True, slots=True)
class BackendPolicy:
    """The operator's rules for backend addresses; the default is the strict one.

    ``own`` lists Portway's listeners as (address, first port, last port): a range
    for ``--listen-ports``, whose thousands of ports cost one comparison; an
    unspecified address (``0.0.0.0`` or ``::``) stands for a listener on all addresses.
    """

    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()
    own: tuple[tuple[Address, int, int], ...] = ()
    _allow: tuple[Span, ...] = field(init=False, repr=False, compare=False)
    _deny: tuple[Span, ...] = field(init=False, repr=False, compare=False)
    _loopback_allowed: tuple[Span, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        loop = [n for n in self.allow if _within_loopback(n)]
        object.__setattr__(self, "_allow", _spans(self.allow))
        object.__setattr__(self, "_deny", _spans(self.deny))
        object.__setattr__(self, "_loopback_allowed", _spans(loop))

    @classmethod
    def build(
        cls,
        *,
        allow: Iterable[str] = (),
        deny: Iterable[str] = (),
        listeners: Iterable[tuple[str, int]] = (),
        port_ranges: Iterable[tuple[str, int, int]] = (),
    ) -> BackendPolicy:
        """From CIDR strings, listener (host, port) pairs and (host, low, high) port
        ranges (``--listen-ports``); bad input is a ConfigError."""
        ranges = [(host, port, port) for host, port in listeners] + list(port_ranges)
        return cls(
            allow=_networks(allow, "--backend-allow"),
            deny=_networks(deny, "--backend-deny"),
            own=tuple((addr, low, high) for host, low, high in ranges for addr in _listener(host)),
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
        for host, low, high in self.own:
            if low <= port <= high and host.is_unspecified:
                return f"port {port} on this node is Portway's own listener"
        return None

    def _check_one(self, ip: Address, port: int) -> str | None:
        version, value = ip.version, int(ip)
        loopback = _inside(_LOOPBACK_SPANS, version, value)
        if self.own and self._is_own(ip, port, loopback or value == 0):
            return f"{ip}:{port} is Portway's own listener"
        for (v, first, last), why in _DENIED_SPANS:
            if v == version and first <= value <= last:
                return f"{ip} is {why}; backends may never use it"
        if _inside(self._deny, version, value):
            return f"{ip} is refused by the operator's backend policy (--backend-deny)"
        if loopback:
            if _inside(self._loopback_allowed, version, value):
                return None
            cidr = "127.0.0.0/8" if version == 4 else "::1/128"
            return f"{ip} is a loopback address; the operator may allow it (--backend-allow {cidr})"
        if self._allow and not _inside(self._allow, version, value):
            return f"{ip} is outside the operator's allowed backend networks (--backend-allow)"
        return None

    def _is_own(self, ip: Address, port: int, local: bool) -> bool:
        """``local``: ``ip`` is loopback or unspecified, where a wildcard listener
        answers too (and a loopback listener is refused on the whole loopback range:
        harmless, and simpler than knowing which loopback address it bound)."""
        for host, low, high in self.own:
            if low <= port <= high and (
                ip == host or (local and (host.is_unspecified or host.is_loopback))
            ):
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


def _listener(host: str) -> tuple[Address, ...]:
    """A listener's addresses: "localhost" is both loopback addresses."""
    if host == "localhost":
        return (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
    addr = parse_ip(host)
    if addr is None:
        raise ConfigError(f"listener {host!r} is not an IP address")
    # A dual-stack "::" listener also takes IPv4: list it under both wildcards.
    if addr == _V6_ANY:
        return (_V6_ANY, _V4_ANY)
    return (addr,)
