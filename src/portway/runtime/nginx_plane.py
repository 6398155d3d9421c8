"""nginx as the data plane (``--dataplane nginx``), behind the same ``DataPlaneHandle`` as
the built-in plane: the driver renders each snapshot into nginx's tree and reloads it.

What nginx OSS cannot take from Portway is said here once: the active checks' verdicts
(nginx has no API to mark a server down without a reload; its own ``max_fails`` passive
check applies instead), per-request metrics (nginx's own logs have them) and SIGHUP's
data-plane settings, which need a restart of Portway. docs/dataplanes.md has the table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

from portway.cache.store import Purge
from portway.dataplane.settings import DataPlaneSettings
from portway.drivers.nginx import NginxDriver, NginxSettings
from portway.drivers.nginx_options import NginxOptions
from portway.errors import ConfigError
from portway.router import Snapshot
from portway.runtime.config import Listen, TlsListen
from portway.runtime.plane_handle import PlaneStats, Target

log = logging.getLogger("portway.drivers.nginx")


class NginxPlane:
    """A ``DataPlaneHandle`` over one ``NginxDriver``."""

    def __init__(
        self,
        listen: Listen,
        settings: DataPlaneSettings,
        *,
        prefix: Path,
        binary: str = "nginx",
        external: bool = False,
        tls: TlsListen | None = None,
        access_log: str | None = None,
    ) -> None:
        if settings.upstream_ca_file is not None:
            # nginx checks a certificate against a DNS name only (X509_check_host), so it
            # cannot verify a backend by its IP address as the built-in plane does.
            raise ConfigError(
                "--upstream-ca-file is not supported with --dataplane nginx: its"
                " proxy_ssl_verify cannot check backends addressed by IP"
            )
        options = NginxOptions(
            http=((listen.host, listen.port),),
            https=((tls.listen.host, tls.listen.port),) if tls is not None else (),
            default_certificate=(str(tls.chain), str(tls.key)) if tls is not None else None,
            trusted_proxies=settings.trusted_proxies,
            forwarded_for=settings.forwarded_for,
            access_log=access_log is not None,
            passive_failures=settings.passive_failures,
            passive_backoff=settings.passive_backoff,
        )
        self.driver = NginxDriver(
            NginxSettings(prefix=prefix, binary=binary, external=external, options=options)
        )
        self._published: dict[int, float] = {}  # version → when it was published
        self._last_apply = 0.0

    async def start(self, snapshot: Snapshot) -> None:
        await self.driver.start()
        self.publish(snapshot, None)
        if not await self.driver.wait_applied(snapshot.version):
            raise ConfigError(
                "nginx did not apply the first configuration: "
                + "; ".join(self.driver.errors or ("no answer",))
            )

    def publish(self, snapshot: Snapshot, changed: set[str] | None) -> None:
        self._published.setdefault(snapshot.version, time.monotonic())
        self.driver.apply(snapshot, changed or ())

    def set_health(self, down: frozenset[Target]) -> None:
        pass  # see the module docstring: nginx's own passive check applies

    async def purge(self, proxy_id: str, purge: Purge) -> int:
        return 0  # this data plane keeps no cache (cache.enabled is reported, docs/caching.md)

    def reconfigure(self, settings: DataPlaneSettings, access_log: str | None) -> None:
        log.warning("SIGHUP: data-plane settings of --dataplane nginx need a restart")

    def stats(self) -> Sequence[PlaneStats]:
        return []  # nginx counts its own requests (its access log, stub_status)

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
        """Why the last snapshot nginx refused was refused (empty once one applies)."""
        return self.driver.errors

    async def close(self) -> None:
        await self.driver.close()
