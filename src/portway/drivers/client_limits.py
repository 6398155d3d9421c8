"""Client limits (rate, banned ranges) where an external data plane does not render
them: refused, not ignored.

HAProxy (stick tables, ACLs) could express both, but the rendering is not written yet
(nginx's is nginx_limits.py); serving such a proxy without its limits would tell its
tenant something false, so the proxy is left out and its problem reported, as a path
rewrite is. The node-wide flags are refused at start on both (``node_problem``).
"""

from __future__ import annotations

from collections.abc import Iterable

from portway.dataplane.settings import DataPlaneSettings
from portway.model import Proxy


def refusals(proxy: Proxy, plane: str) -> Iterable[tuple[str, str]]:
    """(field, message) of each client limit of ``proxy`` that data plane ``plane``
    refuses (the driver reports each as a Problem, the proxy not served)."""
    limits = proxy.limits
    if limits.rate is not None:
        yield "limits.rate", f"the {plane} data plane does not apply client rate limits yet"
    if limits.deny:
        yield "limits.deny", f"the {plane} data plane does not ban client ranges yet"


def node_problem(settings: DataPlaneSettings, plane: str) -> str | None:
    """Why ``--dataplane plane`` cannot run with these node-wide limits, or None."""
    if settings.rate_limit > 0:
        return f"--rate-limit: the {plane} data plane does not apply client rate limits yet"
    if settings.deny_clients:
        return f"--deny-client: the {plane} data plane does not ban client ranges yet"
    return None
