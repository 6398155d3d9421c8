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
    # Toolforge: the RE2 pattern (router.patterns) of the paths this backend serves on a
    # proxy with ``toolforge`` set; one backend per pattern. None elsewhere.
    pattern: str | None = None

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
class Timeouts:
    """Per-proxy timeouts in seconds (None: no limit)."""

    connect: float = 5.0  # TCP connect to a backend → 502/retry
    first_byte: float = 60.0  # request sent → first response byte → 504
    idle: float = 60.0  # no byte in either direction during an exchange → 504 / close
    total: float | None = None  # whole exchange, head to last byte
    websocket_idle: float = 3600.0  # an open tunnel with no traffic (Toolforge needs long)


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """Per-proxy request limits (None: no limit)."""

    max_body_bytes: int | None = None  # larger declared bodies get 413 before any is read


@dataclass(frozen=True, kw_only=True, slots=True)
class CacheSettings:
    enabled: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolSettings:
    """A Toolforge tool's proxy (``<tool>.<canonical-domain>``, docs/toolforge.md): each
    request goes to the backend whose ``pattern`` matches its path, longest pattern
    first. ``canonical``: the tool registered with ``registerCanonical``, so the legacy
    ``/<tool>/`` path redirects to the tool's own hostname."""

    canonical: bool = False


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
    # consistent_hash key: "header:<name>", "cookie:<name>" or None (client address)
    hash_key: str | None = None
    health_check: HealthCheck | None = None
    tls: TlsSettings = field(default_factory=TlsSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)
    toolforge: ToolSettings | None = None  # None: routed by path prefix, as usual
    backends: tuple[Backend, ...] = ()
    source: str = "api"
    created_at: datetime | None = None
    updated_at: datetime | None = None
    revision: int = 0
