"""Proxies and their backends: what a tenant configures, independent of storage or wire."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

ALGORITHMS = (
    "round_robin",
    "weighted_round_robin",
    "least_conn",
    "source_ip",
    "random",
    "consistent_hash",
)
PERSISTENCE_TYPES = ("cookie", "app_cookie", "source_ip")


@dataclass(frozen=True, kw_only=True, slots=True)
class Backend:
    """One upstream server of a proxy. ``id`` is stable across edits, so balancer state
    and health survive snapshot swaps."""

    id: str
    address: str
    port: int
    weight: int = 1
    backup: bool = False
    source: str = "api"

    @property
    def draining(self) -> bool:
        # Weight 0 means drain: no new requests, existing ones finish.
        return self.weight == 0


@dataclass(frozen=True, kw_only=True, slots=True)
class HealthCheck:
    type: str = "http"  # "http" or "tcp"
    method: str = "GET"
    path: str = "/"
    host: str | None = None
    interval: float = 5.0
    timeout: float = 2.0
    rise: int = 2
    fall: int = 3
    expected_codes: str = "200-399"


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionPersistence:
    type: str  # one of PERSISTENCE_TYPES
    cookie_name: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class TlsSettings:
    certificate: str | None = None
    redirect_http: bool = False
    hsts: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class CacheSettings:
    enabled: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class Proxy:
    """A hostname (optionally plus a path prefix) routed to a set of backends."""

    id: str
    project: str
    hostname: str
    path_prefix: str = "/"
    backend_port: int = 80
    algorithm: str = "round_robin"
    session_persistence: SessionPersistence | None = None
    health_check: HealthCheck | None = None
    tls: TlsSettings = field(default_factory=TlsSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    backends: tuple[Backend, ...] = ()
    source: str = "api"
    created_at: datetime | None = None
    updated_at: datetime | None = None
    revision: int = 0
