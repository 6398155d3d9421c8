"""Field rules for proxies and backends, applied to whole domain objects.

Every function returns the normalised value or raises ``ValidationError`` naming the
field, so the API can answer 422 with ``field`` set. ``problems`` runs the same rules
and collects every one a proxy breaks: the snapshot builder leaves such a proxy out
and the API reports it, so a row stored before a rule existed is disabled, not served.

Strings that Portway writes into HTTP are held to their RFC grammar
(``portway.protocol.grammar``): a cookie name is a token, a probe's method a token, its
path origin-form, its host a hostname. A CR or LF in any of them would let a tenant
write header lines, responses or requests of its own.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from portway.errors import ValidationError
from portway.health.expect import parse_expected_codes
from portway.model import (
    ALGORITHMS,
    Backend,
    CacheSettings,
    HealthCheck,
    Limits,
    Proxy,
    PurgeSettings,
    Rewrite,
    SessionPersistence,
    Timeouts,
    ToolSettings,
    normalize_hostname,
    normalize_path_prefix,
)
from portway.model.proxy import (
    FORWARDED_FOR,
    MAX_CACHE_BYTES,
    MAX_CACHE_TTL,
    MAX_KEY_HEADERS,
    MAX_PURGE_CIDRS,
    PERSISTENCE_TYPES,
    PROTOCOLS,
    STREAM_PROTOCOLS,
    Privacy,
    StreamSettings,
)
from portway.model.purge_key import is_key_hash
from portway.protocol import grammar
from portway.router.patterns import compile_pattern

MAX_WEIGHT = 256
# Backend names may be single-label (Kubernetes services, /etc/hosts) and may carry
# underscores (container names), unlike public hostnames.
_BACKEND_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")
MAX_TOKEN = 128
_PROJECT = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z", re.IGNORECASE)
# Project names that would collide with the service-wide URL segments (/v1/projects ...).
RESERVED_PROJECTS = frozenset({"projects", "zones", "tokens", "changes"})


def port(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValidationError(f"{field} must be an integer from 1 to 65535", field=field)
    return value


def weight(value: int, field: str = "weight") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_WEIGHT:
        raise ValidationError(f"{field} must be an integer from 0 to {MAX_WEIGHT}", field=field)
    return value


def address(value: str, field: str = "address") -> str:
    """An IP literal (IPv6 may be bracketed) or a hostname, normalised."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{field} must be a non-empty string", field=field)
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        return str(ipaddress.ip_address(bare))
    except ValueError:
        pass
    name = value.lower().removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_BACKEND_LABEL.match(label) for label in labels):
        raise ValidationError(
            f"{field} {value!r} is neither an IP address nor a hostname", field=field
        )
    return name


def pattern(value: str | None, field: str = "pattern") -> str | None:
    """A Toolforge route pattern: compiles with RE2 (linear-time matching) and is at most
    ``router.patterns.MAX_PATTERN`` characters of printable ASCII; None for no pattern."""
    return None if value is None else compile_pattern(value, field=field).text


def backend_patterns(backends: tuple[Backend, ...]) -> tuple[Backend, ...]:
    """Every pattern compiles, and no two backends of a proxy carry the same one (one
    destination per pattern: the router could not choose between them)."""
    seen: set[str] = set()
    for index, backend in enumerate(backends):
        if backend.pattern is None:
            continue
        field = f"backends[{index}].pattern"
        pattern(backend.pattern, field)
        if backend.pattern in seen:
            raise ValidationError(f"pattern {backend.pattern!r} is listed twice", field=field)
        seen.add(backend.pattern)
    return backends


def toolforge(value: ToolSettings | None) -> ToolSettings | None:
    if value is not None and not isinstance(value.canonical, bool):
        raise ValidationError("toolforge.canonical must be a boolean", field="toolforge.canonical")
    return value


def project_name(value: str, field: str = "name") -> str:
    if not isinstance(value, str) or not _PROJECT.match(value):
        raise ValidationError(
            f"{field} must be 1-64 letters, digits, '.', '_' or '-', starting alphanumeric",
            field=field,
        )
    if value.lower() in RESERVED_PROJECTS:
        raise ValidationError(f"{field} {value!r} is reserved", field=field)
    return value


def token(value: str, field: str) -> str:
    """An RFC 9110 token of at most MAX_TOKEN characters (methods, header and cookie names)."""
    if not grammar.is_token(value) or len(value) > MAX_TOKEN:
        raise ValidationError(
            f"{field} must be an RFC 9110 token: 1-{MAX_TOKEN} letters, digits or "
            "!#$%&'*+-.^_`|~ (no spaces, separators or control characters)",
            field=field,
        )
    return value


def origin_form(value: str, field: str) -> str:
    """An RFC 9112 origin-form request target: ``/path`` with an optional ``?query``."""
    if not grammar.is_origin_form(value):
        raise ValidationError(
            f"{field} must be an RFC 9112 origin-form target (/path?query): RFC 3986 path "
            "and query characters or %XX escapes, no spaces, '#' or control characters",
            field=field,
        )
    return value


def _number(value: object, field: str, low: float, high: float, unit: str = "") -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and low < value <= high
    if not ok:
        raise ValidationError(f"{field} must be between {low:g} and {high:g}{unit}", field=field)


def health_check(check: HealthCheck) -> HealthCheck:
    field = "health_check"
    if check.type not in ("http", "tcp"):
        raise ValidationError(f"{field}.type must be 'http' or 'tcp'", field=f"{field}.type")
    token(check.method, f"{field}.method")
    origin_form(check.path, f"{field}.path")
    for name in ("interval", "timeout"):
        _number(getattr(check, name), f"{field}.{name}", 0, 3600, " seconds")
    for name in ("rise", "fall"):
        count = getattr(check, name)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
            raise ValidationError(f"{field}.{name} must be 1 to 100", field=f"{field}.{name}")
    codes = f"{field}.expected_codes"
    if not isinstance(check.expected_codes, str):
        raise ValidationError(f"{codes} must be a string", field=codes)
    parse_expected_codes(check.expected_codes, field=codes)
    if check.host is not None:
        normalize_hostname(check.host, field=f"{field}.host", wildcard_ok=False)
    return check


def session_persistence(value: SessionPersistence | None) -> SessionPersistence | None:
    """The type is known; a cookie name, when given, is an RFC 6265 cookie-name (a token)."""
    if value is None:
        return None
    if value.type not in PERSISTENCE_TYPES:
        raise ValidationError(
            f"session_persistence.type must be one of {', '.join(PERSISTENCE_TYPES)}",
            field="session_persistence.type",
        )
    if value.cookie_name is not None:
        token(value.cookie_name, "session_persistence.cookie_name")
    return value


def timeouts(value: Timeouts) -> Timeouts:
    for f in dataclasses.fields(value):
        seconds = getattr(value, f.name)
        if seconds is None and f.name == "total":
            continue
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValidationError(f"timeouts.{f.name} must be a number", field=f"timeouts.{f.name}")
        if not 0 < seconds <= 86400:
            raise ValidationError(
                f"timeouts.{f.name} must be between 0 and 86400 seconds", field=f"timeouts.{f.name}"
            )
    return value


MAX_RATE = 1_000_000  # requests a second (and burst): far above any one client's need
MAX_DENY = 100  # CIDRs per proxy; a node-wide list (--deny-client) has no such bound


def limits(value: Limits) -> Limits:
    size = value.max_body_bytes
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise ValidationError(
            "limits.max_body_bytes must be a non-negative integer or null",
            field="limits.max_body_bytes",
        )
    _rate(value.rate, value.burst)
    deny_cidrs(value.deny, "limits.deny", MAX_DENY)
    return value


def _rate(rate: object, burst: object) -> None:
    if rate is not None and (
        isinstance(rate, bool)
        or not isinstance(rate, int | float)
        or not 0 < rate <= MAX_RATE  # NaN fails this too
    ):
        raise ValidationError(
            f"limits.rate must be a number of requests a second in (0, {MAX_RATE}], or null",
            field="limits.rate",
        )
    if burst is None:
        return
    if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= MAX_RATE:
        raise ValidationError(
            f"limits.burst must be an integer from 1 to {MAX_RATE}, or null", field="limits.burst"
        )
    if rate is None:
        raise ValidationError("limits.burst needs limits.rate", field="limits.burst")


def deny_cidrs(value: object, field: str, most: int) -> tuple[str, ...]:
    """A list of at most ``most`` IPv4/IPv6 CIDRs (host bits allowed, as nginx's deny)."""
    if not isinstance(value, tuple | list) or len(value) > most:
        raise ValidationError(f"{field} must be a list of at most {most} CIDRs", field=field)
    for index, cidr in enumerate(value):
        try:
            if not isinstance(cidr, str) or not cidr.isascii() or cidr != cidr.strip():
                raise ValueError(cidr)
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ValidationError(
                f"{field}[{index}] must be an IPv4 or IPv6 address or CIDR", field=field
            ) from None
    return tuple(value)


def privacy(value: Privacy) -> Privacy:
    if value.forwarded_for not in FORWARDED_FOR:
        raise ValidationError(
            f"privacy.forwarded_for must be one of {', '.join(FORWARDED_FOR)}",
            field="privacy.forwarded_for",
        )
    return value


def _whole_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def cache(value: CacheSettings) -> CacheSettings:
    """Sizes and times bounded; key header names RFC 9110 tokens (they are looked up in
    requests and written into ``Vary``-like keys, never echoed, but a name that is not a
    token could never match a real field anyway)."""
    if not isinstance(value.enabled, bool):
        raise ValidationError("cache.enabled must be true or false", field="cache.enabled")
    if not _whole_number(value.max_bytes) or not 0 < value.max_bytes <= MAX_CACHE_BYTES:
        raise ValidationError(
            f"cache.max_bytes must be an integer from 1 to {MAX_CACHE_BYTES}",
            field="cache.max_bytes",
        )
    ttl = value.default_ttl
    if ttl is not None and (
        isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 <= ttl <= MAX_CACHE_TTL
    ):
        raise ValidationError(
            f"cache.default_ttl must be null or from 0 to {MAX_CACHE_TTL:.0f} seconds",
            field="cache.default_ttl",
        )
    key = value.key
    if not isinstance(key.query, bool):
        raise ValidationError("cache.key.query must be true or false", field="cache.key.query")
    names = key.headers
    if not isinstance(names, tuple) or len(names) > MAX_KEY_HEADERS:
        raise ValidationError(
            f"cache.key.headers must be a list of at most {MAX_KEY_HEADERS} names",
            field="cache.key.headers",
        )
    for name in names:
        if not isinstance(name, str) or not grammar.is_token(name) or len(name) > MAX_TOKEN:
            raise ValidationError(
                "cache.key.headers must hold RFC 9110 field names (tokens)",
                field="cache.key.headers",
            )
    return value


def purge(value: PurgeSettings) -> PurgeSettings:
    """``allow_from`` CIDRs as ``ipaddress`` reads them; the key's hash well-formed."""
    cidrs = value.allow_from
    if not isinstance(cidrs, tuple) or len(cidrs) > MAX_PURGE_CIDRS:
        raise ValidationError(
            f"purge.allow_from must be a list of at most {MAX_PURGE_CIDRS} CIDRs",
            field="purge.allow_from",
        )
    for cidr in cidrs:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except (TypeError, ValueError):
            raise ValidationError(
                f"purge.allow_from: {str(cidr)[:64]!r} is not an address or CIDR",
                field="purge.allow_from",
            ) from None
    # The key was checked and hashed where it came in (api/convert.py): what reaches the
    # model is its hash, and nothing else may stand in for one.
    if value.key_hash is not None and not is_key_hash(value.key_hash):
        raise ValidationError("purge.key_hash is not a purge key hash", field="purge.key")
    return value


def rewrite(value: Rewrite) -> Rewrite:
    """The backend prefix is a canonical RFC 3986 path prefix: it is written verbatim
    into the request target, so nothing a backend could read otherwise gets in."""
    prefix = value.backend_prefix
    if prefix is None:
        return value
    field = "rewrite.backend_prefix"
    if normalize_path_prefix(prefix, field=field) != prefix:
        raise ValidationError(
            f"{field} must be a normalised prefix such as {normalize_path_prefix(prefix)!r}",
            field=field,
        )
    return value


def hash_key(value: str | None) -> str | None:
    """``header:<name>`` or ``cookie:<name>``; names are RFC 9110 tokens."""
    if value is None:
        return None
    kind, _, name = value.partition(":") if isinstance(value, str) else ("", "", "")
    if kind not in ("header", "cookie") or not grammar.is_token(name) or len(name) > MAX_TOKEN:
        raise ValidationError(
            "hash_key must be 'header:<name>' or 'cookie:<name>' with a token name",
            field="hash_key",
        )
    return f"{kind}:{name.lower() if kind == 'header' else name}"


def algorithm(value: str) -> str:
    if value not in ALGORITHMS:
        raise ValidationError(
            f"algorithm must be one of {', '.join(ALGORITHMS)}", field="algorithm"
        )
    return value


MAX_STREAM_CONNECTIONS = 1_000_000
# What a relayed connection can be balanced by: no request, so no header, cookie or path.
STREAM_ALGORITHMS = ("round_robin", "weighted_round_robin", "least_conn", "source_ip", "random")
_DEFAULT_STREAM = StreamSettings()


def stream(value: StreamSettings) -> StreamSettings:
    if not isinstance(value.proxy_protocol, bool):
        raise ValidationError(
            "stream.proxy_protocol must be a boolean", field="stream.proxy_protocol"
        )
    most = value.max_connections
    if most is not None and (
        isinstance(most, bool)
        or not isinstance(most, int)
        or not 1 <= most <= MAX_STREAM_CONNECTIONS
    ):
        raise ValidationError(
            f"stream.max_connections must be 1 to {MAX_STREAM_CONNECTIONS} or null",
            field="stream.max_connections",
        )
    return value


def listener(value: Proxy) -> None:
    """The rules that tie ``listen_port``, ``protocol`` and ``stream`` to the rest of a
    proxy (docs/listeners.md). Whether the operator allows the port is the service's
    check (the listen policy is the node's, not the proxy's)."""
    protocol, listen = value.protocol, value.listen_port
    if listen is None and protocol == "http" and value.stream == _DEFAULT_STREAM:
        return  # the shared listeners, as every proxy before issue 13: the hot case
    if listen is not None:
        port(listen, "listen_port")
        if value.tls.redirect_http:  # to the shared HTTPS listener, where it is not served
            raise ValidationError(
                "tls.redirect_http needs the shared listeners (use an https listen_port)",
                field="tls.redirect_http",
            )
    if protocol not in PROTOCOLS:
        raise ValidationError(f"protocol must be one of {', '.join(PROTOCOLS)}", field="protocol")
    if listen is None and protocol != "http":
        raise ValidationError(
            f"protocol {protocol} needs a listen_port (the shared listeners speak HTTP)",
            field="protocol",
        )
    stream(value.stream)
    if protocol not in STREAM_PROTOCOLS:
        if value.stream != _DEFAULT_STREAM:
            raise ValidationError(
                "stream applies only to tcp and tls-passthrough proxies", field="stream"
            )
        return
    _stream_proxy(value)


def _stream_proxy(value: Proxy) -> None:
    """A relayed proxy sees no request: nothing that needs one may be set."""
    if value.path_prefix != "/":
        raise ValidationError(
            f"a {value.protocol} proxy relays whole connections: path_prefix must be /",
            field="path_prefix",
        )
    if value.algorithm not in STREAM_ALGORITHMS:
        raise ValidationError(
            f"a {value.protocol} proxy balances with one of {', '.join(STREAM_ALGORITHMS)}",
            field="algorithm",
        )
    unusable = (
        ("session_persistence", value.session_persistence is not None),
        ("toolforge", value.toolforge is not None),
        ("rewrite", value.rewrite.backend_prefix is not None),
        ("tls", value.tls.certificate is not None or value.tls.redirect_http or value.tls.hsts),
    )
    for name, set_ in unusable:
        if set_:
            raise ValidationError(f"{name} cannot be set on a {value.protocol} proxy", field=name)


def _health_check_or_none(value: HealthCheck | None) -> object:
    return None if value is None else health_check(value)


def _backend_port(value: int) -> int:
    return port(value, "backend_port")


# Every rule on a proxy's own fields, as (field, rule of that field's value), in the order
# they are reported. One table for the API (first failure → 422) and for the snapshot
# builder and the API's status (every failure → disabled and listed).
_PROXY_RULES: tuple[tuple[str, Callable[[Any], object]], ...] = (
    ("algorithm", algorithm),
    ("session_persistence", session_persistence),
    ("health_check", _health_check_or_none),
    ("timeouts", timeouts),
    ("limits", limits),
    ("hostname", normalize_hostname),
    ("path_prefix", normalize_path_prefix),
    ("backend_port", _backend_port),
    ("hash_key", hash_key),
    # Toolforge tools (issue 9): kept after the rules above so their order stays.
    ("toolforge", toolforge),
    ("backends", backend_patterns),
    ("privacy", privacy),
    ("rewrite", rewrite),
    ("cache", cache),
    ("purge", purge),
)
# The rule on the proxy as a whole (listen_port, protocol, stream and what they exclude),
# reported under the field it names.
_WHOLE_RULE = ("listen_port", listener)


def proxy(value: Proxy) -> Proxy:
    """``value`` with hostname and path prefix normalised, or ValidationError."""
    for name, rule in _PROXY_RULES:
        rule(getattr(value, name))
    listener(value)
    return dataclasses.replace(
        value,
        hostname=normalize_hostname(value.hostname),
        path_prefix=normalize_path_prefix(value.path_prefix),
        hash_key=hash_key(value.hash_key),
    )


@dataclass(frozen=True, slots=True)
class Problem:
    """One rule a stored proxy breaks: the field (as the API names it) and why."""

    field: str
    message: str


def _problem(name: str, rule: Callable[[Any], object], value: object) -> Problem | None:
    try:
        rule(value)
    except ValidationError as err:
        return Problem(err.field or name, err.message)
    except Exception as err:  # a stored row is not typed like API input
        # A row written by hand or by an older version may hold values of any type; a
        # rule tripping over one must disable that proxy, never fail the whole snapshot.
        return Problem(name, f"{name} holds an unreadable value ({type(err).__name__})")
    return None


# The fields whose values are mostly distinct: memoising them would only cost.
_UNSHARED = frozenset({"hostname", "backends"})
_FIELDS = attrgetter(*(name for name, _ in _PROXY_RULES))
_Memo = dict[int, tuple[object, Problem | None]]  # id → (the object, kept alive; its problem)


class Screen:
    """``problems`` for many proxies at once, as a snapshot build needs it.

    Stored proxies share their option objects and repeated strings (the store's bulk
    decoder hands out one object per distinct value), so each distinct object is checked
    once: screening 100 000 proxies costs little more than a hostname check each. A
    Screen lives for one build and keeps the objects it checked, so their ids stay unique.
    """

    __slots__ = ("_plan",)

    def __init__(self) -> None:
        self._plan: list[tuple[str, Callable[[Any], object], _Memo | None]] = [
            (name, rule, None if name in _UNSHARED else {}) for name, rule in _PROXY_RULES
        ]

    def problems(self, value: Proxy) -> tuple[Problem, ...]:
        """Every rule ``value`` breaks, in field order; empty when it may be served."""
        found: list[Problem] = []
        memo: _Memo | None
        for field_value, (name, rule, memo) in zip(_FIELDS(value), self._plan, strict=True):
            if memo is None:
                problem = _problem(name, rule, field_value)
            else:
                seen = memo.get(id(field_value))
                if seen is None:
                    problem = _problem(name, rule, field_value)
                    seen = memo[id(field_value)] = (field_value, problem)
                problem = seen[1]
            if problem is not None:
                found.append(problem)
        whole = _problem(*_WHOLE_RULE, value)
        if whole is not None:
            found.append(whole)
        return tuple(found)


def problems(value: Proxy) -> tuple[Problem, ...]:
    """Every rule of ``proxy`` that ``value`` breaks, in field order; empty when it may be
    served. The API shows these as a proxy's ``errors``; the snapshot builder leaves out
    a proxy that has any (through ``Screen``, which runs the same rules)."""
    found = [_problem(name, rule, getattr(value, name)) for name, rule in _PROXY_RULES]
    found.append(_problem(*_WHOLE_RULE, value))
    return tuple(p for p in found if p is not None)
