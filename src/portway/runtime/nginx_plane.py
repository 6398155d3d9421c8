"""nginx as the data plane (``--dataplane nginx``): Portway's settings as nginx options.

nginx OSS cannot mark a server down at runtime, so the active checks' verdicts are a
reload, coalesced with snapshots (``NginxDriver.set_down``); its own ``max_fails``
passive check applies too. The rest is ``runtime/driver_plane.py``.
"""

from __future__ import annotations

from pathlib import Path

from portway.dataplane.settings import DataPlaneSettings
from portway.drivers.nginx import NginxDriver, NginxSettings
from portway.drivers.nginx_options import NginxOptions
from portway.model.listen_policy import ListenPolicy
from portway.runtime.config import Listen, TlsListen
from portway.runtime.driver_plane import DriverPlane, absolute


def nginx_plane(
    listen: Listen,
    settings: DataPlaneSettings,
    *,
    prefix: Path,
    binary: str = "nginx",
    external: bool = False,
    tls: TlsListen | None = None,
    access_log: str | None = None,
    listen_policy: ListenPolicy | None = None,
) -> DriverPlane:
    options = NginxOptions(
        http=((listen.host, listen.port),),
        https=((tls.listen.host, tls.listen.port),) if tls is not None else (),
        default_certificate=(str(tls.chain), str(tls.key)) if tls is not None else None,
        trusted_proxies=settings.trusted_proxies,
        forwarded_for=settings.forwarded_for,
        access_log=access_log is not None,
        passive_failures=settings.passive_failures,
        passive_backoff=settings.passive_backoff,
        keepalive_timeout=settings.keepalive_timeout,
        upstream_ca_file=absolute(settings.upstream_ca_file),
        listen_policy=listen_policy or ListenPolicy(),
        client_header_timeout=settings.client_header_timeout,
    )
    driver = NginxDriver(
        NginxSettings(prefix=prefix, binary=binary, external=external, options=options)
    )
    return DriverPlane(driver, "nginx", purger=driver)
