"""The refusal every driven plane makes for a proxy on a port of its own (pure).

A port this node may not open, or serves with another protocol, or an https port with no
certificate to answer on, leaves its proxy out: serving it on the shared listeners
instead would publish a tcp or TLS service as HTTP, or on ports the tenant never chose
(docs/listeners.md). Each driver adds what only its daemon cannot do.
"""

from __future__ import annotations

from collections.abc import Mapping

from portway.drivers.problems import Problem
from portway.model import Proxy


def port_problem(
    proxy: Proxy, *, binds: bool, claimed: Mapping[int, str], has_certificate: bool
) -> Problem | None:
    """``binds``: whether the plane opens ``proxy.listen_port`` (the node's
    ``--listen-ports``); ``claimed``: the protocol each port serves in this snapshot."""
    port = proxy.listen_port
    if port is None:
        return None
    if not binds:
        message = f"listen_port {port} is not in this node's --listen-ports: not served"
        return Problem(proxy.id, "listen_port", message, False)
    if claimed.get(port) != proxy.protocol:
        message = f"listen_port {port} speaks {claimed.get(port)}, not {proxy.protocol}"
        return Problem(proxy.id, "protocol", message, False)
    if proxy.protocol == "https" and not has_certificate:
        message = "an https port needs the node's default certificate (--tls-cert)"
        return Problem(proxy.id, "listen_port", message, False)
    return None
