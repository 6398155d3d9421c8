"""An external daemon (nginx, HAProxy) as the data plane, behind the same
``DataPlaneHandle`` as the built-in plane: the driver renders each snapshot and the
active checks' verdicts into the daemon's configuration and applies them.

What such a daemon does itself instead of taking it from Portway is said here once:
per-request metrics (its own logs and stats have them), passive ejection (its own
``max_fails`` or ``observe layer4``, not reported as Portway ejections) and SIGHUP's
data-plane settings, which need a restart of Portway. docs/dataplanes.md has the table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from portway.cache.store import Purge
from portway.dataplane.settings import DataPlaneSettings
from portway.drivers.apply_loop import ApplyLoop, Down
from portway.errors import ConfigError
from portway.router import Snapshot
from portway.runtime.plane_handle import PlaneStats, Target
from portway.tls.tickets import TicketKeys

log = logging.getLogger("portway.drivers")


def absolute(path: Path | None) -> str | None:
    """A path the daemon is given: absolute, since nginx reads a relative one from its
    prefix and HAProxy's master re-executes itself from another directory."""
    return str(path.resolve()) if path is not None else None


class Driver(Protocol):
    """What the plane needs of a driver (``NginxDriver``, ``HaproxyDriver``)."""

    name: str
    loop: ApplyLoop
    reloads: int

    async def start(self) -> None: ...

    def apply(self, snapshot: Snapshot, changed_ids: Iterable[str] = ()) -> None: ...

    def set_down(self, down: Down) -> None: ...

    def set_ticket_keys(self, keys: TicketKeys) -> None: ...

    async def close(self) -> None: ...


class Purger(Protocol):
    """A driver that carries out the API's purges (``NginxDriver``)."""

    async def purge(self, proxy_id: str, purge: Purge) -> int: ...


class DriverPlane:
    """A ``DataPlaneHandle`` over one driver; ``kind`` is the ``--dataplane`` value;
    ``purger``: how its daemon's cache is purged (None: it keeps none)."""

    def __init__(self, driver: Driver, kind: str, purger: Purger | None = None) -> None:
        self.driver = driver
        self.kind = kind
        self.purger = purger
        self._published: dict[int, float] = {}  # version → when it was published
        self._last_apply = 0.0

    async def start(self, snapshot: Snapshot) -> None:
        await self.driver.start()
        self.publish(snapshot, None)
        if not await self.driver.loop.wait_applied(snapshot.version):
            raise ConfigError(
                f"{self.driver.name} did not apply the first configuration: "
                + "; ".join(self.driver.loop.errors or ("no answer",))
            )

    def publish(self, snapshot: Snapshot, changed: set[str] | None) -> None:
        self._published.setdefault(snapshot.version, time.monotonic())
        self.driver.apply(snapshot, changed or ())

    def set_health(self, down: frozenset[Target]) -> None:
        self.driver.set_down(down)

    def set_ticket_keys(self, keys: TicketKeys) -> None:
        self.driver.set_ticket_keys(keys)

    async def purge(self, proxy_id: str, purge: Purge) -> int:
        if self.purger is None:
            return 0  # the daemon keeps no cache (cache.enabled is reported, docs/caching.md)
        return await self.purger.purge(proxy_id, purge)

    def reconfigure(self, settings: DataPlaneSettings, access_log: str | None) -> None:
        log.warning("SIGHUP: data-plane settings of --dataplane %s need a restart", self.kind)

    def stats(self) -> Sequence[PlaneStats]:
        return []  # the daemon counts its own requests

    def is_ejected(self, target: Target) -> bool:
        return False

    @property
    def applied_version(self) -> int:
        version = self.driver.loop.applied_version or 0
        published = self._published.pop(version, None)
        if published is not None:
            self._last_apply = time.monotonic() - published
            for older in [v for v in self._published if v < version]:
                del self._published[older]
        return version

    @property
    def last_apply_seconds(self) -> float:
        return self._last_apply

    @property
    def errors(self) -> tuple[str, ...]:
        """Why the last snapshot the daemon refused was refused (empty once one applies)."""
        return self.driver.loop.errors

    def proxy_status(self, proxy_id: str, revision: int) -> dict[str, Any]:
        """The API's ``dataplane`` field: whether the daemon serves this revision of the
        proxy, the refusal that keeps it from doing so, what it lacks for the proxy."""
        loop = self.driver.loop
        applied = (loop.applied_version or 0) >= revision
        refused = not applied and loop.errors
        return {
            "plane": self.kind,
            "applied": applied,
            "error": "; ".join(loop.errors) if refused else None,
            "problems": [
                {"field": p.field, "message": p.message, "served": p.served}
                for p in loop.problems
                if p.proxy_id == proxy_id
            ],
        }

    def gauges(self) -> dict[str, tuple[str, list[tuple[dict[str, str], float]]]]:
        """The daemon's figures for ``/metrics``, labelled by plane."""
        loop, label = self.driver.loop, {"plane": self.kind}
        return {
            "portway_dataplane_applied_version": (
                "Snapshot version the external data plane runs.",
                [(label, float(loop.applied_version or 0))],
            ),
            "portway_dataplane_apply_failures_total": (
                "Snapshots the external data plane refused (the last good one kept running).",
                [(label, float(loop.refusals))],
            ),
            "portway_dataplane_failing": (
                "1 while the external data plane's last snapshot was refused or it exited.",
                [(label, 1.0 if loop.errors else 0.0)],
            ),
            "portway_dataplane_reloads_total": (
                "Reloads of the external data plane.",
                [(label, float(self.driver.reloads))],
            ),
        }

    async def close(self) -> None:
        await self.driver.close()
