"""The configuration of ``portway serve`` and the parsers of its values.

The settings table (runtime/settings.py) says where each field comes from."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from portway.dataplane.settings import DataPlaneSettings
from portway.errors import ConfigError, PortwayError
from portway.model.backend_policy import BackendPolicy


@dataclass(frozen=True, kw_only=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, kw_only=True, slots=True)
class TlsListen:
    """The HTTPS listener and the default certificate served when no other matches."""

    listen: Listen
    chain: Path
    key: Path


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeConfig:
    data_dir: Path
    http: Listen
    api: Listen
    https: Listen | None = None  # None: no HTTPS listener
    default_zone: str = "portway.test"  # the default certificate covers *.zone and zone
    workers: int = 0
    store_url: str | None = None
    dataplane: DataPlaneSettings = field(default_factory=DataPlaneSettings)
    access_log: str | None = None  # a path, "-" for standard output, None for none
    drain_timeout: float = 10.0
    admin_token: str | None = None
    log_level: str = "info"
    # Prometheus exporters' habit: a listener of their own, here on loopback by default.
    metrics: Listen | None = field(default_factory=lambda: Listen(host="127.0.0.1", port=9568))
    backend_allow: tuple[str, ...] = ()  # CIDRs; empty: any address the rules let through
    backend_deny: tuple[str, ...] = ()
    # DNS records (RFC 2136; portway.dns.config reads these as one DnsConfig).
    dns_server: Listen | None = None  # None: no DNS management
    dns_zones: tuple[str, ...] = ()
    dns_tsig_name: str = ""
    dns_tsig_algorithm: str = "hmac-sha256"
    dns_tsig_secret_file: Path | None = None
    dns_addresses: tuple[str, ...] = ()
    dns_ttl: int = 300
    dns_owner: str = "portway"
    dns_timeout: float = 5.0
    # Keystone tokens (portway.auth.keystone reads these as one KeystoneConfig).
    keystone_url: str | None = None  # None: Portway's own tokens only
    keystone_user: str = ""
    keystone_password_file: Path | None = None
    keystone_project: str = "service"
    keystone_user_domain: str = "Default"
    keystone_project_domain: str = "Default"
    keystone_cafile: Path | None = None
    keystone_cache_ttl: float = 30.0
    keystone_cache_size: int = 1024
    keystone_timeout: float = 5.0

    @property
    def backend_policy(self) -> BackendPolicy:
        """The backend rules, with every listener of this node refused as a backend."""
        listeners = [self.api, self.http, self.https, self.metrics]
        return BackendPolicy.build(
            allow=self.backend_allow,
            deny=self.backend_deny,
            listeners=[(x.host, x.port) for x in listeners if x is not None],
        )

    @property
    def database_url(self) -> str:
        if self.store_url:
            return self.store_url
        return f"sqlite:///{(self.data_dir / 'portway.db').resolve()}"


def parse_listen(value: str, *, flag: str) -> Listen:
    """``host:port``, ``[v6]:port`` or ``:port`` (all addresses) → Listen."""
    text = value.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{flag}: expected HOST:PORT, got {value!r}", field=flag)
    host = host or "0.0.0.0"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ConfigError(f"{flag}: {host!r} is not an IP address", field=flag) from None
    return Listen(host=host, port=int(port))


def parse_optional_listen(value: str, *, flag: str) -> Listen | None:
    """Like parse_listen; an empty value turns the listener off."""
    return parse_listen(value, flag=flag) if value.strip() else None


def parse_zone(value: str, *, flag: str) -> str:
    from portway.model import normalize_hostname

    try:
        return normalize_hostname(value, field=flag, wildcard_ok=False)
    except PortwayError as exc:
        raise ConfigError(f"{flag}: {exc.message}", field=flag) from None


def parse_cidrs(values: tuple[str, ...], *, flag: str) -> tuple[str, ...]:
    out = []
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            try:
                out.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ConfigError(f"{flag}: {item!r} is not a CIDR", field=flag) from None
    return tuple(out)


def default_workers() -> int:
    return os.cpu_count() or 1
