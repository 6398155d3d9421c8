"""The seam between the control process and whatever serves the traffic.

The control process drives a data plane only through ``DataPlaneHandle``: the built-in
plane in its own loop (``InProcessPlane``, ``--workers 0``), the worker processes
(``WorkerPool``), and later the nginx and HAProxy drivers. A handle receives whole,
versioned snapshots (with the ids that changed, so it may apply deltas), the active
checks' verdicts and SIGHUP's live settings; it reports the version it has applied and
its traffic figures. Nothing here knows about processes, pipes or event-loop internals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from portway.cache.store import Purge
from portway.dataplane.settings import DataPlaneSettings
from portway.router import Snapshot
from portway.tls.tickets import TicketKeys

Target = tuple[str, str]  # (proxy id, backend id)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaneStats:
    """One serving process's figures: its request metrics export
    (``RequestMetrics.export()``), its open client connections, and the backends its
    passive checks have ejected right now."""

    metrics: Mapping[str, object]
    open_connections: int
    ejected: frozenset[Target]


class DataPlaneHandle(Protocol):
    """What the control process needs from a data plane. Called on the control loop only.

    ``start`` comes first and ``close`` last; every other call may come at any time in
    between and must return at once (a slow or stuck data plane never holds the caller).
    """

    async def start(self, snapshot: Snapshot) -> None:
        """Serve ``snapshot`` on the listeners given at construction."""

    def publish(self, snapshot: Snapshot, changed: set[str] | None) -> None:
        """Serve ``snapshot`` from now on. ``changed`` holds the ids of the proxies that
        differ from the previous snapshot published (None: treat it as new as a whole).
        Publishing the snapshot ``start`` was given again changes nothing."""

    def set_health(self, down: frozenset[Target]) -> None:
        """The backends the active checks declare down, as a whole set."""

    def set_ticket_keys(self, keys: TicketKeys) -> None:
        """The tier's TLS session-ticket keys, as a whole set (docs/ha.md): every serving
        process seals tickets with the current one and opens them with any."""

    def reconfigure(self, settings: DataPlaneSettings, access_log: str | None) -> None:
        """SIGHUP: switch to ``settings`` and reopen the access log (a path, ``-`` for
        standard output, None for none). Raises OSError, having changed nothing, when
        the access log cannot be opened."""

    async def purge(self, proxy_id: str, purge: Purge) -> int:
        """Drop what ``purge`` matches from proxy ``proxy_id``'s cache in every serving
        process, in order after the snapshots published before; the entries dropped."""

    def stats(self) -> Sequence[PlaneStats]:
        """The latest figures, one entry per serving process (may lag by a second)."""

    def is_ejected(self, target: Target) -> bool:
        """Whether any serving process has ``target`` passively ejected; cheap enough to
        ask once per backend of a listing."""

    @property
    def applied_version(self) -> int:
        """The snapshot version every serving process has applied."""

    @property
    def last_apply_seconds(self) -> float:
        """Published to applied everywhere, for the last version applied (0 when
        publishing applies at once)."""

    async def close(self) -> None:
        """Stop accepting, let in-flight exchanges finish up to the drain timeout given
        at construction, and stop."""
