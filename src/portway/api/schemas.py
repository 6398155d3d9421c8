"""Wire schemas of the v1 API (pydantic), kept apart from the domain model.

Request models are strict (no "80" for 80, no unknown fields) so that a wrong type is a
400 naming the field. Every string and list has a length limit, and numbers their range:
breaking one is a 422 naming the field, like the service's own rules on values (hostname
labels, zones), which stay the authority for every source of configuration. The OpenAPI
document is generated from these models, so it states exactly these limits.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from portway.health.expect import MAX_EXPECTED_CODES
from portway.model import (
    ALGORITHMS,
    Backend,
    CacheKey,
    CacheSettings,
    HealthCheck,
    Limits,
    Privacy,
    Proxy,
    PurgeSettings,
    Rewrite,
    Role,
    SessionPersistence,
    StreamSettings,
    Timeouts,
    TlsSettings,
    purge_key,
)
from portway.model.hostname import MAX_HOSTNAME
from portway.model.proxy import (
    FORWARDED_FOR,
    MAX_CACHE_BYTES,
    MAX_CACHE_TTL,
    MAX_KEY_HEADERS,
    MAX_PURGE_CIDRS,
    PERSISTENCE_TYPES,
    PROTOCOLS,
    defaults,
)
from portway.model.quota import QUOTA_NAMES, UNLIMITED
from portway.router.patterns import MAX_PATTERN
from portway.service import (
    MAX_BACKENDS,
    MAX_CERTIFICATE_NAME,
    MAX_DENY,
    MAX_PEM,
    MAX_RATE,
    MAX_WEIGHT,
)
from portway.service.validation import MAX_STREAM_CONNECTIONS

# Length limits (the API's own: every string is bounded before any rule looks at it).
HOSTNAME = MAX_HOSTNAME + 1  # one trailing dot is allowed, and dropped
PATH = 1024
NAME = 64  # project names (and the store's column)
TOKEN = 128  # an RFC 9110 token: a method or a cookie name
SHORT = 32  # enumerated words
TEXT = 255  # free text and references (the store's column width)
MAX_INT = 2**63 - 1
MAX_PORT = 65535
CIDR = 49  # the longest IPv6 CIDR text (with an embedded IPv4 address and /128)


def _whole(value: Any) -> Any:
    """84.0 as 84: JSON has one number type, and JSON Schema's "integer" includes 84.0.
    Anything else (a string, a bool, 84.5) is left for the strict int check to refuse."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Int = Annotated[int, BeforeValidator(_whole)]


# Grammars, documented so that generated requests (schemathesis) reach past validation;
# the service checks them, with its own messages (422 naming the field).
_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_GRAMMAR = rf"^(\*\.)?({_LABEL}\.)+{_LABEL}\.?$"
PREFIX_GRAMMAR = r"^/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$"
PROJECT_GRAMMAR = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _enum(values: Any) -> dict[str, Any]:
    """Document the allowed words; the service checks them (422 naming the field)."""
    return {"enum": [str(v) for v in values]}


def _grammar(pattern: str) -> dict[str, Any]:
    return {"pattern": pattern}


def _optional(*, doc: dict[str, Any] | None = None, **constraints: Any) -> Any:
    """A PATCH field that may be left out but not set to null: absent means unchanged,
    so its default is never read (only ``model_fields_set`` is) nor documented."""

    def document(schema: dict[str, Any]) -> None:
        schema.pop("default", None)
        schema.update(doc or {})

    return Field(default=None, json_schema_extra=document, **constraints)


class StrictIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# The defaults are the model's (one definition); these schemas add the wire's limits.
# tests/api/test_schemas_follow_the_model.py holds their fields to the model's.
_HEALTH = defaults(HealthCheck)
_PERSISTENCE = defaults(SessionPersistence)
_TLS = defaults(TlsSettings)
_CACHE = defaults(CacheSettings)
_CACHE_KEY = defaults(CacheKey)
_PURGE = defaults(PurgeSettings)
_TIMEOUTS = defaults(Timeouts)
_LIMITS = defaults(Limits)
_PRIVACY = defaults(Privacy)
_REWRITE = defaults(Rewrite)
_STREAM = defaults(StreamSettings)
_PROXY = defaults(Proxy)
_BACKEND = defaults(Backend)


class HealthCheckIn(StrictIn):
    type: str = Field(_HEALTH["type"], max_length=SHORT, json_schema_extra=_enum(("http", "tcp")))
    method: str = Field(_HEALTH["method"], min_length=1, max_length=TOKEN)
    path: str = Field(_HEALTH["path"], min_length=1, max_length=PATH)
    host: str | None = Field(
        _HEALTH["host"], max_length=HOSTNAME, json_schema_extra=_grammar(HOSTNAME_GRAMMAR)
    )
    interval: float = Field(_HEALTH["interval"], gt=0, le=3600)
    timeout: float = Field(_HEALTH["timeout"], gt=0, le=3600)
    rise: Int = Field(_HEALTH["rise"], ge=1, le=100)
    fall: Int = Field(_HEALTH["fall"], ge=1, le=100)
    expected_codes: str = Field(
        _HEALTH["expected_codes"], min_length=1, max_length=MAX_EXPECTED_CODES
    )


class SessionPersistenceIn(StrictIn):
    type: str = Field(max_length=SHORT, json_schema_extra=_enum(PERSISTENCE_TYPES))
    cookie_name: str | None = Field(_PERSISTENCE["cookie_name"], min_length=1, max_length=TOKEN)


class TlsIn(StrictIn):
    certificate: str | None = Field(
        _TLS["certificate"], max_length=MAX_CERTIFICATE_NAME, description="id or name"
    )
    redirect_http: bool = _TLS["redirect_http"]
    hsts: bool = _TLS["hsts"]


class CacheKeyIn(StrictIn):
    query: bool = _CACHE_KEY["query"]
    headers: list[Annotated[str, Field(min_length=1, max_length=TOKEN)]] = Field(
        default_factory=list, max_length=MAX_KEY_HEADERS
    )


class CacheIn(StrictIn):
    enabled: bool = _CACHE["enabled"]
    max_bytes: Int = Field(_CACHE["max_bytes"], ge=1, le=MAX_CACHE_BYTES)
    default_ttl: float | None = Field(_CACHE["default_ttl"], ge=0, le=MAX_CACHE_TTL)
    key: CacheKeyIn = Field(default_factory=CacheKeyIn)


class PurgeSettingsIn(StrictIn):
    allow_from: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=MAX_PURGE_CIDRS
    )
    # Write-only: written in clear, kept as its salted hash (model/purge_key.py: the rule
    # for new keys); answers show only key_set.
    key: str | None = Field(
        _PURGE["key_hash"], min_length=purge_key.MIN_LENGTH, max_length=purge_key.MAX_LENGTH
    )


class TimeoutsIn(StrictIn):
    connect: float = Field(_TIMEOUTS["connect"], gt=0, le=86400)
    first_byte: float = Field(_TIMEOUTS["first_byte"], gt=0, le=86400)
    idle: float = Field(_TIMEOUTS["idle"], gt=0, le=86400)
    total: float | None = Field(_TIMEOUTS["total"], gt=0, le=86400)
    websocket_idle: float = Field(_TIMEOUTS["websocket_idle"], gt=0, le=86400)


class LimitsIn(StrictIn):
    max_body_bytes: Int | None = Field(_LIMITS["max_body_bytes"], ge=0, le=MAX_INT)
    rate: float | None = Field(
        _LIMITS["rate"],
        gt=0,
        le=MAX_RATE,
        description="requests a second per client address (429 over it); null: the node's",
    )
    burst: Int | None = Field(
        _LIMITS["burst"], ge=1, le=MAX_RATE, description="requests back to back; null: rate's"
    )
    # Not strict: a JSON array arrives as a list, and the model holds a tuple.
    deny: tuple[Annotated[str, Field(max_length=CIDR, strict=True)], ...] = Field(
        _LIMITS["deny"], max_length=MAX_DENY, strict=False, description="client CIDRs → 403"
    )


class PrivacyIn(StrictIn):
    forwarded_for: str = Field(
        _PRIVACY["forwarded_for"],
        max_length=SHORT,
        description="send the client's address upstream (inherit: the node's --forwarded-for)",
        json_schema_extra=_enum(FORWARDED_FOR),
    )


class RewriteIn(StrictIn):
    backend_prefix: str | None = Field(
        _REWRITE["backend_prefix"],
        min_length=1,
        max_length=PATH,
        description="replaces path_prefix in the request target sent upstream (null: none)",
        json_schema_extra=_grammar(PREFIX_GRAMMAR),
    )


class StreamIn(StrictIn):
    proxy_protocol: bool = Field(
        _STREAM["proxy_protocol"], description="send a PROXY protocol v2 header to the backend"
    )
    max_connections: Int | None = Field(
        _STREAM["max_connections"],
        ge=1,
        le=MAX_STREAM_CONNECTIONS,
        description="connections relayed at once per data plane (null: the node's limit)",
    )


_LISTEN_PORT_DOC = "the proxy's own port, one --listen-ports allows (null: the shared listeners)"


class BackendIn(StrictIn):
    address: str = Field(min_length=1, max_length=TEXT, description="IP address or hostname")
    port: Int | None = Field(None, ge=1, le=MAX_PORT, description="null: the proxy's backend_port")
    weight: Int = Field(_BACKEND["weight"], ge=0, le=MAX_WEIGHT, description="0 drains")
    backup: bool = _BACKEND["backup"]
    tls: bool = Field(
        _BACKEND["tls"], description="speak TLS to it (docs/dataplane.md#tls-backends)"
    )
    pattern: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_PATTERN,
        description="RE2 pattern of the paths it serves (a toolforge proxy; docs/toolforge.md)",
    )


class ToolforgeIn(StrictIn):
    canonical: bool = False


class ProxyCreate(StrictIn):
    hostname: str = Field(
        min_length=1, max_length=HOSTNAME, json_schema_extra=_grammar(HOSTNAME_GRAMMAR)
    )
    path_prefix: str = Field(
        _PROXY["path_prefix"],
        min_length=1,
        max_length=PATH,
        json_schema_extra=_grammar(PREFIX_GRAMMAR),
    )
    backend_port: Int = Field(_PROXY["backend_port"], ge=1, le=MAX_PORT)
    algorithm: str = Field(
        _PROXY["algorithm"], max_length=SHORT, json_schema_extra=_enum(ALGORITHMS)
    )
    # Option sub-objects: absent (null) means the model's default (convert.py).
    session_persistence: SessionPersistenceIn | None = None
    health_check: HealthCheckIn | None = None
    tls: TlsIn | None = None
    cache: CacheIn | None = None
    purge: PurgeSettingsIn | None = None
    timeouts: TimeoutsIn | None = None
    limits: LimitsIn | None = None
    privacy: PrivacyIn | None = None
    rewrite: RewriteIn | None = None
    hash_key: str | None = Field(
        _PROXY["hash_key"], max_length=TEXT, description="header:<name> or cookie:<name>"
    )
    toolforge: ToolforgeIn | None = Field(
        _PROXY["toolforge"],
        description="a Toolforge tool's proxy: routed by its backends' patterns",
    )
    listen_port: Int | None = Field(
        _PROXY["listen_port"], ge=1, le=MAX_PORT, description=_LISTEN_PORT_DOC
    )
    protocol: str = Field(_PROXY["protocol"], max_length=SHORT, json_schema_extra=_enum(PROTOCOLS))
    stream: StreamIn | None = None
    backends: list[BackendIn] = Field(default_factory=list, max_length=MAX_BACKENDS)


class ProxyUpdate(StrictIn):
    """Only the fields present are changed; ``null`` clears the nullable ones."""

    hostname: str = _optional(min_length=1, max_length=HOSTNAME, doc=_grammar(HOSTNAME_GRAMMAR))
    path_prefix: str = _optional(min_length=1, max_length=PATH, doc=_grammar(PREFIX_GRAMMAR))
    backend_port: Int = _optional(ge=1, le=MAX_PORT)
    algorithm: str = _optional(max_length=SHORT, doc=_enum(ALGORITHMS))
    session_persistence: SessionPersistenceIn | None = None
    health_check: HealthCheckIn | None = None
    tls: TlsIn = _optional()
    cache: CacheIn = _optional()
    purge: PurgeSettingsIn = _optional()
    timeouts: TimeoutsIn = _optional()
    limits: LimitsIn = _optional()
    privacy: PrivacyIn = _optional()
    rewrite: RewriteIn = _optional()
    hash_key: str | None = Field(None, max_length=TEXT)
    toolforge: ToolforgeIn | None = None
    listen_port: Int | None = Field(None, ge=1, le=MAX_PORT, description=_LISTEN_PORT_DOC)
    protocol: str = _optional(max_length=SHORT, doc=_enum(PROTOCOLS))
    stream: StreamIn = _optional()


class BackendUpdate(StrictIn):
    weight: Int = _optional(ge=0, le=MAX_WEIGHT)
    backup: bool = _optional()


class ProjectIn(StrictIn):
    name: str = Field(min_length=1, max_length=NAME, json_schema_extra=_grammar(PROJECT_GRAMMAR))


class TokenIn(StrictIn):
    role: str = Field(max_length=SHORT, json_schema_extra=_enum(Role))
    description: str = Field("", max_length=TEXT)


class ZoneIn(StrictIn):
    name: str = Field(min_length=1, max_length=HOSTNAME)
    project: str | None = Field(None, min_length=1, max_length=NAME)
    shared: bool = False
    shared_host: bool = Field(
        False, description="one hostname every project may route under its own path prefixes"
    )
    default: bool = False
    deprecated: bool = False


class CertificateIn(StrictIn):
    name: str = Field(min_length=1, max_length=MAX_CERTIFICATE_NAME)
    chain: str = Field(max_length=MAX_PEM, description="PEM: the leaf first, then intermediates")
    key: str = Field(
        max_length=MAX_PEM, description="PEM private key (unencrypted); never returned"
    )


# Envelopes: {"proxy": {...}} and friends.
MAX_PURGE_ITEMS = 256  # urls, prefixes and keys each, per purge request


class PurgeIn(StrictIn):
    """What to drop from a proxy's cache (docs/caching.md); checked by convert.purge."""

    urls: list[Annotated[str, Field(min_length=1, max_length=PATH)]] = Field(
        default_factory=list, max_length=MAX_PURGE_ITEMS
    )
    prefixes: list[Annotated[str, Field(min_length=1, max_length=PATH)]] = Field(
        default_factory=list, max_length=MAX_PURGE_ITEMS
    )
    keys: list[Annotated[str, Field(min_length=1, max_length=TEXT)]] = Field(
        default_factory=list, max_length=MAX_PURGE_ITEMS
    )


class PurgeRequest(StrictIn):
    purge: PurgeIn


class PurgedOut(BaseModel):
    purged: int  # entries dropped, summed over every worker's cache


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
    tls: bool
    source: str
    pattern: str | None = None
    health: str = "unknown"


class ProblemOut(BaseModel):
    field: str
    message: str


class DataPlaneProblemOut(BaseModel):
    field: str
    message: str
    served: bool = Field(description="true: served without this feature; false: left out")


class DataPlaneStatusOut(BaseModel):
    """What the data plane made of the proxy (nginx and HAProxy can refuse a snapshot or
    lack a feature; the built-in plane reports nothing here)."""

    plane: str | None = None
    applied: bool | None = Field(
        default=None, description="the data plane serves this proxy's latest revision"
    )
    error: str | None = Field(
        default=None, description="why the data plane refused the snapshot with this revision"
    )
    problems: list[DataPlaneProblemOut] = Field(default_factory=list)


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
    purge: dict[str, Any]
    timeouts: dict[str, Any]
    limits: dict[str, Any]
    privacy: dict[str, Any]
    rewrite: dict[str, Any]
    hash_key: str | None
    toolforge: dict[str, Any] | None = None
    listen_port: int | None
    protocol: str
    stream: dict[str, Any]
    backends: list[BackendOut]
    source: str
    created_at: datetime | None
    updated_at: datetime | None
    revision: int
    status: str = Field(description="active, or error: not served (see errors)")
    errors: list[ProblemOut] = Field(description="the rules a stored proxy breaks")
    dataplane: DataPlaneStatusOut = Field(default_factory=DataPlaneStatusOut)


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


class NodeOut(BaseModel):
    name: str
    addresses: list[str]
    version: str
    applied_revision: int
    digest: str
    started_at: datetime
    last_seen: datetime
    lost: bool  # silent for three of its report intervals


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


# Quotas: one field per model field (model/quota.py). In: null takes the node's default.
_QUOTA_DOC = "-1: unlimited; null: the node's default (--quota-*)"
QuotaIn = create_model(
    "QuotaIn",
    __base__=StrictIn,
    **{
        n: (Int | None, Field(None, ge=UNLIMITED, le=MAX_INT, description=_QUOTA_DOC))
        for n in QUOTA_NAMES
    },  # type: ignore[call-overload]
)
QuotaLimits = create_model(
    "QuotaLimits",
    **{n: (int | None, Field(description=_QUOTA_DOC)) for n in QUOTA_NAMES},  # type: ignore[call-overload]
)


class QuotaRequest(StrictIn):
    quota: QuotaIn


class QuotaOut(BaseModel):
    """The limits in force (the project's own, else the node's), the project's own, and
    what it uses (backends_per_proxy: its largest proxy's; cache_bytes: the max_bytes of
    its enabled caches, summed)."""

    project: str
    limits: QuotaLimits
    own: QuotaLimits
    in_use: dict[str, int]


class QuotaErrorOut(BaseModel):
    """Beside a 403 for a write over quota, as Octavia's quotas answer."""

    name: str
    limit: int
    in_use: int


class ErrorBody(BaseModel):
    code: int
    title: str
    message: str
    field: str | None = None
    quota: QuotaErrorOut | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


def envelope(key: str, model: type[BaseModel], *, many: bool = False) -> type[BaseModel]:
    """The response model ``{key: model}`` or ``{key: [model, ...]}``, for the document."""
    name = f"{key[:1].upper()}{key[1:]}Response"
    fields: dict[str, Any] = {key: (list[model] if many else model, ...)}  # type: ignore[valid-type]
    return create_model(name, **fields)
