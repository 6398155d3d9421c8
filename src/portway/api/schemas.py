"""Wire schemas of the v1 API (pydantic), kept apart from the domain model.

Request models are strict (no "80" for 80, no unknown fields) so that a wrong type is a
400 naming the field; rules on values (port ranges, hostname labels) belong to the
service and come back as 422.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class StrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class HealthCheckIn(StrictIn):
    type: str = "http"
    method: str = "GET"
    path: str = "/"
    host: str | None = None
    interval: float = 5.0
    timeout: float = 2.0
    rise: int = 2
    fall: int = 3
    expected_codes: str = "200-399"


class SessionPersistenceIn(StrictIn):
    type: str
    cookie_name: str | None = None


class TlsIn(StrictIn):
    certificate: str | None = None
    redirect_http: bool = False
    hsts: bool = False


class CacheIn(StrictIn):
    enabled: bool = False


class TimeoutsIn(StrictIn):
    connect: float = 5.0
    first_byte: float = 60.0
    idle: float = 60.0
    total: float | None = None
    websocket_idle: float = 3600.0


class LimitsIn(StrictIn):
    max_body_bytes: int | None = None


class BackendIn(StrictIn):
    address: str
    port: int | None = None
    weight: int = 1
    backup: bool = False


class ProxyCreate(StrictIn):
    hostname: str
    path_prefix: str = "/"
    backend_port: int = 80
    algorithm: str = "round_robin"
    session_persistence: SessionPersistenceIn | None = None
    health_check: HealthCheckIn | None = None
    tls: TlsIn | None = None
    cache: CacheIn | None = None
    timeouts: TimeoutsIn | None = None
    limits: LimitsIn | None = None
    hash_key: str | None = None
    backends: list[BackendIn] = Field(default_factory=list)


class ProxyUpdate(StrictIn):
    """Only the fields present are changed; ``null`` clears the nullable ones."""

    hostname: str | None = None
    path_prefix: str | None = None
    backend_port: int | None = None
    algorithm: str | None = None
    session_persistence: SessionPersistenceIn | None = None
    health_check: HealthCheckIn | None = None
    tls: TlsIn | None = None
    cache: CacheIn | None = None
    timeouts: TimeoutsIn | None = None
    limits: LimitsIn | None = None
    hash_key: str | None = None


class BackendUpdate(StrictIn):
    weight: int | None = None
    backup: bool | None = None


class ProjectIn(StrictIn):
    name: str


class TokenIn(StrictIn):
    role: str
    description: str = ""


class ZoneIn(StrictIn):
    name: str
    project: str | None = None
    shared: bool = False
    shared_host: bool = Field(
        False, description="one hostname every project may route under its own path prefixes"
    )
    default: bool = False
    deprecated: bool = False


class CertificateIn(StrictIn):
    name: str
    chain: str = Field(description="PEM: the leaf first, then intermediates")
    key: str = Field(description="PEM private key (unencrypted); never returned")


# Envelopes: {"proxy": {...}} and friends.
class ProxyCreateRequest(StrictIn):
    proxy: ProxyCreate


class ProxyUpdateRequest(StrictIn):
    proxy: ProxyUpdate


class BackendRequest(StrictIn):
    backend: BackendIn


class BackendsRequest(StrictIn):
    backends: list[BackendIn]


class BackendUpdateRequest(StrictIn):
    backend: BackendUpdate


class ProjectRequest(StrictIn):
    project: ProjectIn


class TokenRequest(StrictIn):
    token: TokenIn


class ZoneRequest(StrictIn):
    zone: ZoneIn


class CertificateRequest(StrictIn):
    certificate: CertificateIn


# Responses.
class BackendOut(BaseModel):
    id: str
    address: str
    port: int
    weight: int
    backup: bool
    source: str
    health: str = "unknown"


class ProblemOut(BaseModel):
    field: str
    message: str


class ProxyOut(BaseModel):
    id: str
    project: str
    hostname: str
    path_prefix: str
    backend_port: int
    algorithm: str
    session_persistence: dict[str, Any] | None
    health_check: dict[str, Any] | None
    tls: dict[str, Any]
    cache: dict[str, Any]
    timeouts: dict[str, Any]
    limits: dict[str, Any]
    hash_key: str | None
    backends: list[BackendOut]
    source: str
    created_at: datetime | None
    updated_at: datetime | None
    revision: int
    status: str = Field(description="active, or error: not served (see errors)")
    errors: list[ProblemOut] = Field(description="the rules a stored proxy breaks")


class ProjectOut(BaseModel):
    name: str
    created_at: datetime | None


class TokenOut(BaseModel):
    id: str
    project: str | None
    role: str
    description: str
    created_at: datetime | None
    expires_at: datetime | None
    secret: str | None = Field(default=None, description="only in the create response")


class ZoneOut(BaseModel):
    name: str
    project: str | None
    shared: bool
    shared_host: bool
    default: bool
    deprecated: bool


class ChangeOut(BaseModel):
    revision: int
    project: str | None
    actor: str
    kind: str
    action: str
    object_id: str
    before: Any
    after: Any
    at: datetime


class CertificateOut(BaseModel):
    id: str
    project: str
    name: str
    names: list[str]
    not_after: datetime | None
    fingerprint: str
    created_at: datetime | None


class ErrorBody(BaseModel):
    code: int
    title: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody
