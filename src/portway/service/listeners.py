"""Who may claim which port (issue 13, docs/listeners.md).

A proxy with a ``listen_port`` passes these before it is written, beyond its own
fields' rules (validation.listener):

- the operator allows the port (``--listen-ports``) and it is none of Portway's own
  (``ListenPolicy.check``: 403 naming ``listen_port``), checked when the port is new to
  the proxy, so that a port the operator later withdraws does not freeze its proxies'
  other settings (the data planes stop serving it: it is no longer in the policy);
- every proxy on one port speaks one protocol, and a ``tcp`` port has one proxy (there
  is no hostname to tell two apart): 409 naming ``listen_port``.

Which project a hostname belongs to is the zones' rule, the same on every port
(zones.check_claim), so one (port, hostname) belongs to one project. A conflict names
the proxy that holds the port when the caller may read that proxy's project, and only
then: a tenant learns nothing of another project's proxies from a refusal.
"""

from __future__ import annotations

from portway.errors import ConflictError
from portway.model import Proxy
from portway.model.listen_policy import ListenPolicy
from portway.service.auth import Actor
from portway.store import Reader


def _owner(actor: Actor, other: Proxy) -> str:
    if actor.is_admin or actor.project == other.project:
        return f"proxy {other.hostname} ({other.id})"
    return "another project's proxy"


def check_listener(
    reader: Reader, actor: Actor, proxy: Proxy, policy: ListenPolicy, *, new_port: bool
) -> None:
    """The port is one ``proxy`` may claim and nobody holds in a way that excludes it."""
    port = proxy.listen_port
    if port is None:
        return
    if new_port:
        policy.check(port)
    for other in reader.find_proxies(listen_port=port):
        if other.id == proxy.id:
            continue
        if other.protocol != proxy.protocol:
            raise ConflictError(
                f"listen_port {port} serves {other.protocol} for {_owner(actor, other)}",
                field="listen_port",
            )
        if proxy.protocol == "tcp":
            raise ConflictError(
                f"listen_port {port} is a tcp port held by {_owner(actor, other)}",
                field="listen_port",
            )
