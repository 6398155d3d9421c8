"""Proxies and their backends: what a tenant configures, independent of storage or wire.

``Proxy``'s fields are the one definition of a proxy's settings: ``SETTINGS`` (what its
owner sets) and ``OPTIONS`` (the settings that are option objects, such as ``Timeouts``)
are derived from them, and so are the API's conversions, the wire schemas' defaults, the
store's row mapping and the service's list of what an update may change. A new setting is
one field here plus its rule in ``service/validation.py`` (and, on the wire, its limits
in ``api/schemas.py``, which a test holds to these fields).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

ALGORITHMS = (
    "round_robin",
    "weighted_round_robin",
    "least_conn",
    "source_ip",
    "random",
    "consistent_hash",
)
PERSISTENCE_TYPES = ("cookie", "app_cookie", "source_ip")
FORWARDED_FOR = ("inherit", "on", "off")  # Privacy.forwarded_for
# Proxy.protocol (docs/listeners.md). On the shared listeners a proxy is "http": served
# on both the HTTP and the HTTPS listener. On a port of its own (listen_port) it is one
# of these; "tcp" and "tls-passthrough" relay bytes instead of speaking HTTP.
PROTOCOLS = ("http", "https", "tcp", "tls-passthrough")
STREAM_PROTOCOLS = frozenset({"tcp", "tls-passthrough"})


@dataclass(frozen=True, kw_only=True, slots=True)
class Backend:
    """One upstream server of a proxy. ``id`` is stable across edits, so balancer state
    and health survive snapshot swaps."""

    id: str
    address: str
    port: int
    weight: int = 1
    backup: bool = False
    # Speak TLS to this backend (nginx ``proxy_pass https://``, HAProxy ``server ... ssl``);
    # the certificate is checked only when the operator gives --upstream-ca-file.
    tls: bool = False
    source: str = "api"
    # The URL exactly as the dynamicproxy API received it ("http://10.0.0.5:80"), which
    # its clients read back (cleanup jobs parse backends[0]); None for other backends.
    url: str | None = None
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
    """Per-proxy request limits (None: no limit; docs/limits.md).

    ``rate``: requests a second per client address, with ``burst`` of them back to back
    (None: one second's worth), over which a client gets 429; None: the node's
    ``--rate-limit``. ``deny``: CIDRs whose clients get 403, beside the node's
    ``--deny-client``. The client address is the one Portway trusts (its peer, or the
    trusted-proxy chain's first untrusted hop)."""

    max_body_bytes: int | None = None  # larger declared bodies get 413 before any is read
    rate: float | None = None
    burst: int | None = None
    deny: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # JSON (the store's column, the API's body) hands lists; the object stays hashable.
        object.__setattr__(self, "deny", tuple(self.deny))


DEFAULT_CACHE_BYTES = 64 << 20  # CacheSettings.max_bytes
MAX_CACHE_BYTES = 1 << 40  # the largest max_bytes a tenant may ask for (1 TiB)
MAX_CACHE_TTL = 365 * 86400.0  # default_ttl's bound, in seconds
MAX_KEY_HEADERS = 16  # CacheKey.headers
MAX_PURGE_CIDRS = 64  # PurgeSettings.allow_from


@dataclass(frozen=True, kw_only=True, slots=True)
class CacheKey:
    """What, besides method-independent host and path, tells two cached responses apart:
    the query string (``query``), and the values of the request headers named in
    ``headers`` (lower-case field names; the origin's ``Vary`` adds its own)."""

    query: bool = True
    headers: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class CacheSettings:
    """The built-in data plane's HTTP cache for this proxy (RFC 9111, as a shared
    cache; docs/caching.md). ``max_bytes`` bounds the memory this proxy's entries take
    in each worker; ``default_ttl`` (seconds) is the freshness of a response that says
    nothing of its own (None: only what RFC 9111 §4.2.2 lets a cache guess)."""

    enabled: bool = False
    max_bytes: int = DEFAULT_CACHE_BYTES
    default_ttl: float | None = None
    key: CacheKey = field(default_factory=CacheKey)

    @property
    def reserved_bytes(self) -> int:
        """What this cache counts against its project's ``cache_bytes`` quota: the most
        it may hold (``max_bytes``, the default when unset) when enabled, else nothing.
        The bound is reserved, not the bytes stored now, so a write is judged on what it
        asks for and the answer does not change with the traffic."""
        return self.max_bytes if self.enabled else 0


@dataclass(frozen=True, kw_only=True, slots=True)
class PurgeSettings:
    """Who may send the data plane's ``PURGE`` method for one URL of this proxy: a
    client whose address is in ``allow_from`` (CIDRs), or one that sends the key in the
    ``X-Purge-Key`` header. The key itself is never kept: ``key_hash`` is its salted
    hash (model/purge_key.py; None: no key opens it). Nobody else, by default."""

    allow_from: tuple[str, ...] = ()
    key_hash: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Privacy:
    """What the backend learns about the client. ``forwarded_for``: whether the client's
    address goes upstream (``X-Forwarded-For``, ``Forwarded: for=``): ``on``, ``off``,
    or ``inherit`` the node's ``--forwarded-for``. Off, neither is sent, and no header
    of the client's that carries an address (X-Forwarded-For, Forwarded) passes either."""

    forwarded_for: str = "inherit"

    def sends_client_address(self, node_default: bool) -> bool:
        """The one reading of the setting, for every data plane."""
        if self.forwarded_for == "inherit":
            return node_default
        return self.forwarded_for == "on"


@dataclass(frozen=True, kw_only=True, slots=True)
class Rewrite:
    """What the backend sees as the request's path. ``backend_prefix``: the proxy's
    ``path_prefix`` is replaced by it in the request target (``/health/x`` of a proxy at
    ``/health`` with ``/configuration/health`` goes upstream as
    ``/configuration/health/x``); None: the target goes as the client sent it."""

    backend_prefix: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamSettings:
    """What a ``tcp`` or ``tls-passthrough`` proxy does with a relayed connection (the
    connect and idle timeouts are ``Timeouts.connect`` and ``Timeouts.idle``).
    ``proxy_protocol``: send a PROXY protocol v2 header to the backend first, so it
    learns the client's address. ``max_connections``: client connections this proxy
    relays at once per data plane (None: the node's --max-connections)."""

    proxy_protocol: bool = False
    max_connections: int | None = None


# Fields the service and the store fill in; a proxy's owner sets the others directly
# (backends have operations of their own).
_NOT_SET = MappingProxyType({"setting": False})


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

    id: str = field(metadata=_NOT_SET)
    project: str = field(metadata=_NOT_SET)
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
    purge: PurgeSettings = field(default_factory=PurgeSettings)
    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)
    privacy: Privacy = field(default_factory=Privacy)
    rewrite: Rewrite = field(default_factory=Rewrite)
    toolforge: ToolSettings | None = None  # None: routed by path prefix, as usual
    # The spec's "from port" (issue 13): None serves the proxy on the shared listeners;
    # a port is one the operator allows with --listen-ports, opened on demand.
    listen_port: int | None = None
    protocol: str = "http"  # one of PROTOCOLS
    stream: StreamSettings = field(default_factory=StreamSettings)
    backends: tuple[Backend, ...] = field(default=(), metadata=_NOT_SET)
    source: str = field(default="api", metadata=_NOT_SET)
    created_at: datetime | None = field(default=None, metadata=_NOT_SET)
    updated_at: datetime | None = field(default=None, metadata=_NOT_SET)
    revision: int = field(default=0, metadata=_NOT_SET)


def defaults(cls: type[Any]) -> Mapping[str, Any]:
    """The default of each field of dataclass ``cls`` that has one, by name."""
    found: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            found[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            found[f.name] = f.default_factory()
    return MappingProxyType(found)


@dataclass(frozen=True, slots=True)
class Option:
    """A setting whose value is an option object (``Timeouts``, ``HealthCheck``...): one
    sub-object on the wire, one JSON column in the store, set and replaced as a whole."""

    name: str
    type: type[Any]
    # The Proxy's default: an instance (shared, as option objects are frozen), or None
    # where the option may be absent (no health check, no session persistence).
    default: Any

    def build(self, values: Mapping[str, Any] | None) -> Any:
        """The option object from its fields' values; None gives the default."""
        return self.default if values is None else _build(self.type, values)


_HINTS: dict[type[Any], Mapping[str, Any]] = {}


def _hints(cls: type[Any]) -> Mapping[str, Any]:
    # Looked up once per option class: rows are decoded by the thousand.
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _build(cls: type[Any], values: Mapping[str, Any]) -> Any:
    """``cls(**values)``, with nested option objects (``CacheSettings.key``) built from
    their dicts and JSON lists made tuples, so that stored and wire values compare equal
    to the model's."""
    hints = _hints(cls)
    built: dict[str, Any] = {}
    for name, value in values.items():
        kind = _option_type(hints.get(name))
        if kind is not None and isinstance(value, Mapping):
            value = _build(kind, value)
        elif isinstance(value, list):
            value = tuple(value)
        built[name] = value
    return cls(**built)


def _option_type(hint: Any) -> type[Any] | None:
    """The option class of a field typed ``C`` or ``C | None``, for a dataclass ``C``."""
    for candidate in typing.get_args(hint) or (hint,):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _settings() -> tuple[tuple[str, ...], tuple[Option, ...]]:
    hints = typing.get_type_hints(Proxy)
    names = [f.name for f in dataclasses.fields(Proxy) if f.metadata.get("setting", True)]
    proxy_defaults = defaults(Proxy)
    options = []
    for name in names:
        kind = _option_type(hints[name])
        if kind is not None:
            options.append(Option(name, kind, proxy_defaults[name]))
    return tuple(names), tuple(options)


# The settings of a proxy, in field order, and those that are option objects.
SETTINGS, OPTIONS = _settings()
OPTION_BY_NAME: Mapping[str, Option] = MappingProxyType({o.name: o for o in OPTIONS})
