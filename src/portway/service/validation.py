"""Field rules for proxies and backends, applied to whole domain objects.

Every function returns the normalised value or raises ``ValidationError`` naming the
field, so the API can answer 422 with ``field`` set.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re

from portway.errors import ValidationError
from portway.health.expect import parse_expected_codes
from portway.model import (
    ALGORITHMS,
    HealthCheck,
    Limits,
    Proxy,
    Timeouts,
    normalize_hostname,
    normalize_path_prefix,
)
from portway.model.proxy import PERSISTENCE_TYPES

MAX_WEIGHT = 256
# Backend names may be single-label (Kubernetes services, /etc/hosts) and may carry
# underscores (container names), unlike public hostnames.
_BACKEND_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)\Z")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}\Z")
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


def project_name(value: str, field: str = "name") -> str:
    if not isinstance(value, str) or not _PROJECT.match(value):
        raise ValidationError(
            f"{field} must be 1-64 letters, digits, '.', '_' or '-', starting alphanumeric",
            field=field,
        )
    if value.lower() in RESERVED_PROJECTS:
        raise ValidationError(f"{field} {value!r} is reserved", field=field)
    return value


def health_check(check: HealthCheck) -> HealthCheck:
    field = "health_check"
    if check.type not in ("http", "tcp"):
        raise ValidationError(f"{field}.type must be 'http' or 'tcp'", field=f"{field}.type")
    if not check.path.startswith("/"):
        raise ValidationError(f"{field}.path must start with '/'", field=f"{field}.path")
    for name in ("interval", "timeout"):
        if not 0 < getattr(check, name) <= 3600:
            raise ValidationError(
                f"{field}.{name} must be between 0 and 3600 seconds", field=f"{field}.{name}"
            )
    for name in ("rise", "fall"):
        if not 1 <= getattr(check, name) <= 100:
            raise ValidationError(f"{field}.{name} must be 1 to 100", field=f"{field}.{name}")
    parse_expected_codes(check.expected_codes, field=f"{field}.expected_codes")
    if check.host is not None:
        normalize_hostname(check.host, field=f"{field}.host", wildcard_ok=False)
    return check


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


def limits(value: Limits) -> Limits:
    size = value.max_body_bytes
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise ValidationError(
            "limits.max_body_bytes must be a non-negative integer or null",
            field="limits.max_body_bytes",
        )
    return value


def hash_key(value: str | None) -> str | None:
    """``header:<name>`` or ``cookie:<name>``; names are token characters (RFC 9110)."""
    if value is None:
        return None
    kind, _, name = value.partition(":")
    if kind not in ("header", "cookie") or not _TOKEN.match(name):
        raise ValidationError(
            "hash_key must be 'header:<name>' or 'cookie:<name>'", field="hash_key"
        )
    return f"{kind}:{name.lower() if kind == 'header' else name}"


def proxy(value: Proxy) -> Proxy:
    """``value`` with hostname and path prefix normalised, or ValidationError."""
    if value.algorithm not in ALGORITHMS:
        raise ValidationError(
            f"algorithm must be one of {', '.join(ALGORITHMS)}", field="algorithm"
        )
    persistence = value.session_persistence
    if persistence is not None and persistence.type not in PERSISTENCE_TYPES:
        raise ValidationError(
            f"session_persistence.type must be one of {', '.join(PERSISTENCE_TYPES)}",
            field="session_persistence.type",
        )
    if value.health_check is not None:
        health_check(value.health_check)
    timeouts(value.timeouts)
    limits(value.limits)
    return dataclasses.replace(
        value,
        hostname=normalize_hostname(value.hostname),
        path_prefix=normalize_path_prefix(value.path_prefix),
        backend_port=port(value.backend_port, "backend_port"),
        hash_key=hash_key(value.hash_key),
    )
