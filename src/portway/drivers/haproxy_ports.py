"""Frontends for the proxies on ports of their own (``listen_port``, docs/listeners.md),
as text (pure).

An ``http`` or ``https`` port is a frontend like the shared one (``haproxy_base.frontend``:
the same hygiene; TLS with the proxy's certificate by SNI or the default one), routed by
a host map of its own (``hosts-PORT.map``). A ``tcp`` port relays to its one proxy's
backend; a ``tls-passthrough`` port reads the ClientHello's server name
(``req_ssl_sni``) without terminating TLS and picks the proxy of that name, exact or
one-level wildcard, through the same host-map lookup as HTTP (``txn.host``,
``txn.wild``). Only the ports the node's ``--listen-ports`` allows are ever bound
(``allowed``): the second wall behind the API's check, as in dataplane/listeners.py.
"""

from __future__ import annotations

from collections.abc import Sequence

from portway.drivers import haproxy_base as base
from portway.drivers.addresses import listen_addresses
from portway.drivers.haproxy_options import HaproxyOptions
from portway.drivers.haproxy_syntax import backend_name
from portway.model import Proxy


def name(port: int) -> str:
    return f"portway_port_{port}"


def hosts_file(port: int) -> str:
    return f"hosts-{port}.map"


def binds(port: int, options: HaproxyOptions) -> base.Binds:
    """Where ``port`` is opened: the policy's addresses for it, none when it is not
    allowed or is one of Portway's own."""
    return tuple((address, port) for address in options.listen_policy.opens(port))


def allowed(port: int, options: HaproxyOptions) -> bool:
    return bool(binds(port, options))


def stream(
    port: int, protocol: str, proxies: Sequence[Proxy], rules: str, options: HaproxyOptions
) -> str:
    """A ``tcp`` or ``tls-passthrough`` port's frontend; ``rules``: the host-map lookup
    (passthrough only)."""
    where = listen_addresses(binds(port, options), "HAProxy")
    idle = max(p.timeouts.idle for p in proxies)
    # The defaults' idle-close-on-response is an HTTP option: unset, not warned about.
    lines = [f"frontend {name(port)}\n", "    mode tcp\n", "    no option idle-close-on-response\n"]
    lines += [f"    bind {a}\n" for a in where]
    lines.append(f"    timeout client {base.ms(idle)}\n")
    if protocol == "tcp":
        # One proxy per tcp port (the service's rule); the smallest id if ever more.
        lines.append(f"    default_backend {backend_name(proxies[0].id)}\n")
        return "".join(lines)
    hello = "{ req_ssl_hello_type 1 }"
    sni = "req_ssl_sni,lower,regsub('[.]$','')"
    lines += [
        # The ClientHello must arrive within --client-header-timeout, as on the
        # built-in plane; anything else is closed without relaying a byte.
        f"    tcp-request inspect-delay {base.ms(options.header_timeout)}\n",
        f"    tcp-request content set-var(txn.host) {sni} if {hello}\n",
        "    tcp-request content set-var(txn.wild)"
        f" var(txn.host),regsub('^[a-z0-9-]+[.]','*.') if {hello}\n",
        f"    tcp-request content accept if {hello}\n",
        "    tcp-request content reject\n",
        rules,
    ]
    return "".join(lines)
