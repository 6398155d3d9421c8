"""HAProxy as the data plane (``--dataplane haproxy``), behind the same ``DataPlaneHandle``
as the built-in plane: the driver renders each snapshot into HAProxy's files and applies
it through the Runtime API or a seamless reload.

What HAProxy does itself instead of taking it from Portway is said here once: health
(its own active checks on every member, with the proxy's settings or the OpenStack HA
guide's defaults, plus a passive mark-down on refused connections; Portway's verdicts
are not pushed), per-request metrics (its stats socket and logs have them) and SIGHUP's
data-plane settings, which need a restart of Portway. docs/dataplanes.md has the table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from portway.cache.store import Purge
from portway.dataplane.settings import DataPlaneSettings
from portway.drivers.haproxy import HaproxyDriver, HaproxySettings
from portway.drivers.haproxy_options import HaproxyOptions
from portway.errors import ConfigError
from portway.router import Snapshot
from portway.runtime.config import Listen, TlsListen
from portway.runtime.plane_handle import PlaneStats, Target

log = logging.getLogger("portway.drivers.haproxy")


class HaproxyPlane:
    """A ``DataPlaneHandle`` over one ``HaproxyDriver``."""

    def __init__(
        self,
        listen: Listen,
        settings: DataPlaneSettings,
        *,
        prefix: Path,
        binary: str = "haproxy",
        external: bool = False,
        tls: TlsListen | None = None,
    ) -> None:
        if settings.upstream_ca_file is not None:
            # The driver renders TLS members unverified; refusing the setting keeps an
            # operator from believing backends are checked when they are not.
            raise ConfigError("--upstream-ca-file is not supported with --dataplane haproxy yet")
        options = HaproxyOptions(
            http=((listen.host, listen.port),),
            https=((tls.listen.host, tls.listen.port),) if tls is not None else (),
            trusted_proxies=settings.trusted_proxies,
            forwarded_for=settings.forwarded_for,
            passive_failures=settings.passive_failures,
            client_timeout=settings.keepalive_timeout,
            header_timeout=settings.client_header_timeout,
        )
        self.driver = HaproxyDriver(
            HaproxySettings(
                prefix=prefix,
                binary=binary,
                external=external,
                options=options,
                default_certificate=(tls.chain, tls.key) if tls is not None else None,
            )
        )
        self._published: dict[int, float] = {}  # version → when it was published
        self._last_apply = 0.0

    async def start(self, snapshot: Snapshot) -> None:
        await self.driver.start()
        self.publish(snapshot, None)
        if not await self.driver.wait_applied(snapshot.version):
            raise ConfigError(
                "HAProxy did not apply the first configuration: "
                + "; ".join(self.driver.errors or ("no answer",))
            )

    def publish(self, snapshot: Snapshot, changed: set[str] | None) -> None:
        self._published.setdefault(snapshot.version, time.monotonic())
        self.driver.apply(snapshot, changed or ())

    def set_health(self, down: frozenset[Target]) -> None:
        pass  # see the module docstring: HAProxy's own checks apply

    async def purge(self, proxy_id: str, purge: Purge) -> int:
        return 0  # this data plane keeps no cache (cache.enabled is reported, docs/caching.md)

    def reconfigure(self, settings: DataPlaneSettings, access_log: str | None) -> None:
        log.warning("SIGHUP: data-plane settings of --dataplane haproxy need a restart")

    def stats(self) -> Sequence[PlaneStats]:
        return []  # HAProxy counts its own requests (its stats socket)

    def is_ejected(self, target: Target) -> bool:
        return False

    @property
    def applied_version(self) -> int:
        version = self.driver.applied_version or 0
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
        """Why the last snapshot HAProxy refused was refused (empty once one applies)."""
        return self.driver.errors

    async def close(self) -> None:
        await self.driver.close()
