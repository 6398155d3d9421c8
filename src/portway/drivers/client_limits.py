"""Client limits (rate, banned ranges) on the external data planes: the rules both
drivers share about when they can apply them, refused where they cannot, never ignored.

- Both key on the daemon's own peer address (nginx's ``$binary_remote_addr``, HAProxy's
  ``src``). Behind ``--trusted-proxy`` the built-in plane limits the forwarded client
  instead (the X-Forwarded-For chain read past every trusted hop); neither daemon walks
  that chain as it does (nginx's driver sets no ``real_ip``; HAProxy's configuration has
  no loop, a fixed unrolled walk would stop early on a longer chain, and its ``hdr_ip``
  reads ``addr:port`` hops the built-in plane stops at; a Lua fetch could, none is
  written), so there a proxy with limits is refused (``refusals``): keyed by the peer,
  every client of the trusted proxy would share one bucket, and a banned client would
  pass.
- The node-wide flags follow the same rule at start (``node_problem``), and stop it
  where a plane does not render them at all (``NODE_WIDE``).

Serving such a proxy without its limits would tell its tenant something false, so the
proxy is left out and its problem reported, as a path rewrite is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from portway.dataplane.settings import DataPlaneSettings
from portway.model import Proxy

# The ``--dataplane`` values whose drivers render --rate-limit and --deny-client.
NODE_WIDE: Final = frozenset({"haproxy"})


def _behind_trusted(plane: str) -> str:
    return (
        f"{plane} limits its peer, not the client a trusted proxy forwards: with "
        "--trusted-proxy client limits are refused"
    )


def refusals(
    proxy: Proxy, plane: str, trusted_proxies: tuple[str, ...]
) -> Iterable[tuple[str, str]]:
    """(field, message) of each client limit of ``proxy`` that data plane ``plane``
    cannot apply as the built-in plane would (the driver reports each as a Problem, the
    proxy not served)."""
    limits = proxy.limits
    if trusted_proxies and (limits.rate is not None or limits.deny):
        yield ("limits.rate" if limits.rate is not None else "limits.deny"), _behind_trusted(plane)


def node_problem(
    plane: str,
    *,
    rate_limit: float,
    deny_clients: tuple[str, ...],
    trusted_proxies: tuple[str, ...],
) -> str | None:
    """Why data plane ``plane`` cannot run with these node-wide limits, or None."""
    flags = [
        f for f, on in (("--rate-limit", rate_limit > 0), ("--deny-client", deny_clients)) if on
    ]
    if not flags:
        return None
    if plane.lower() not in NODE_WIDE:
        what = "apply client rate limits" if flags[0] == "--rate-limit" else "ban client ranges"
        return f"{flags[0]}: the {plane} data plane does not {what} yet"
    if trusted_proxies:
        return f"{flags[0]}: {_behind_trusted(plane)}"
    return None


def start_problem(settings: DataPlaneSettings, plane: str) -> str | None:
    """``node_problem`` for ``--dataplane plane`` with the node's settings."""
    return node_problem(
        plane,
        rate_limit=settings.rate_limit,
        deny_clients=settings.deny_clients,
        trusted_proxies=settings.trusted_proxies,
    )
