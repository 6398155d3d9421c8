"""HAProxy as the data plane (``--dataplane haproxy``): Portway's settings as HAProxy
options.

HAProxy runs its own active checks on every member (the proxy's settings, or the
OpenStack HA guide's defaults) and a passive mark-down on refused connections;
Portway's verdicts are pushed on top through the Runtime API (``set server … state
maint|ready``, ``HaproxyDriver.set_down``). The rest is ``runtime/driver_plane.py``.
"""

from __future__ import annotations

from pathlib import Path

from portway.dataplane.settings import DataPlaneSettings
from portway.drivers.haproxy import HaproxyDriver, HaproxySettings
from portway.drivers.haproxy_options import HaproxyOptions
from portway.model.listen_policy import ListenPolicy
from portway.runtime.config import Listen, TlsListen
from portway.runtime.driver_plane import DriverPlane, absolute


def haproxy_plane(
    listen: Listen,
    settings: DataPlaneSettings,
    *,
    prefix: Path,
    binary: str = "haproxy",
    external: bool = False,
    tls: TlsListen | None = None,
    listen_policy: ListenPolicy | None = None,
    cache_memory: int = 1024,
) -> DriverPlane:
    options = HaproxyOptions(
        http=((listen.host, listen.port),),
        https=((tls.listen.host, tls.listen.port),) if tls is not None else (),
        trusted_proxies=settings.trusted_proxies,
        forwarded_for=settings.forwarded_for,
        passive_failures=settings.passive_failures,
        client_timeout=settings.keepalive_timeout,
        header_timeout=settings.client_header_timeout,
        upstream_ca_file=absolute(settings.upstream_ca_file),
        rate_limit=settings.rate_limit,
        rate_burst=settings.rate_burst,
        rate_limit_clients=settings.rate_limit_clients,
        deny_clients=settings.deny_clients,
        cache_memory=cache_memory,
        listen_policy=listen_policy or ListenPolicy(),
    )
    driver = HaproxyDriver(
        HaproxySettings(
            prefix=prefix,
            binary=binary,
            external=external,
            options=options,
            default_certificate=(tls.chain, tls.key) if tls is not None else None,
        )
    )
    return DriverPlane(driver, "haproxy")
