"""The built-in data plane in the control process's own loop (``--workers 0``), behind
the same ``DataPlaneHandle`` as the worker pool."""

from __future__ import annotations

from collections.abc import Sequence

from portway.cache.store import Purge
from portway.dataplane.server import DataPlane
from portway.dataplane.settings import DataPlaneSettings
from portway.model.backend_policy import BackendPolicy
from portway.model.listen_policy import ListenPolicy
from portway.router import Snapshot
from portway.runtime.access_logs import open_access_log, switch
from portway.runtime.config import Listen, TlsListen
from portway.runtime.plane_handle import PlaneStats, Target
from portway.tls.tickets import TicketKeys


class InProcessPlane:
    """A ``DataPlaneHandle`` over one ``DataPlane``: publishing is one assignment, so the
    applied version is always the published one."""

    def __init__(
        self,
        listen: Listen,
        settings: DataPlaneSettings,
        drain_timeout: float,
        *,
        tls: TlsListen | None = None,
        access_log: str | None = None,
        backend_policy: BackendPolicy | None = None,
        listen_policy: ListenPolicy | None = None,
    ) -> None:
        self._listen = listen
        self._tls = tls
        self._drain = drain_timeout
        self.plane = DataPlane(
            settings,
            access_log=open_access_log(access_log),
            backend_policy=backend_policy,
            listen_policy=listen_policy,
        )

    async def start(self, snapshot: Snapshot) -> None:
        self.plane.apply(snapshot)
        await self.plane.listen_http(self._listen.host, self._listen.port)
        if self._tls is not None:
            self.plane.tls.load_default(self._tls.chain, self._tls.key)
            await self.plane.listen_https(self._tls.listen.host, self._tls.listen.port)

    def publish(self, snapshot: Snapshot, changed: set[str] | None) -> None:
        if snapshot is not self.plane.snapshot:
            self.plane.apply(snapshot)

    def set_health(self, down: frozenset[Target]) -> None:
        self.plane.set_health(down)

    def set_ticket_keys(self, keys: TicketKeys) -> None:
        self.plane.tls.set_ticket_keys(keys)

    def reconfigure(self, settings: DataPlaneSettings, access_log: str | None) -> None:
        # Opened before anything changes, so that a bad path changes nothing.
        switch(self.plane, settings, open_access_log(access_log))

    def stats(self) -> Sequence[PlaneStats]:
        plane = self.plane
        return [
            PlaneStats(
                metrics=plane.metrics.export(),
                open_connections=plane.open_connections,
                ejected=plane.ejected(),
            )
        ]

    async def purge(self, proxy_id: str, purge: Purge) -> int:
        return self.plane.purge(proxy_id, purge)

    def is_ejected(self, target: Target) -> bool:
        # No metrics copy: this is asked once per backend of an API listing.
        return target in self.plane.ejected()

    @property
    def applied_version(self) -> int:
        return self.plane.applied_version

    @property
    def last_apply_seconds(self) -> float:
        return 0.0

    async def close(self) -> None:
        await self.plane.close(self._drain)
        if self.plane.access_log is not None:  # SIGHUP may have reopened it
            self.plane.access_log.flush()
