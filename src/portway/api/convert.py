"""Converters between wire schemas and domain objects; the only place that knows both."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from portway.api import schemas
from portway.errors import ValidationError
from portway.model import (
    Backend,
    CacheSettings,
    Change,
    HealthCheck,
    Limits,
    Project,
    Proxy,
    Role,
    SessionPersistence,
    Timeouts,
    TlsSettings,
    Token,
    ToolSettings,
    Zone,
)
from portway.service import BackendSpec, validation

HealthFn = Callable[[str, str], dict[str, Any]]


def backend_spec(body: schemas.BackendIn) -> BackendSpec:
    return BackendSpec(
        address=body.address,
        port=body.port,
        weight=body.weight,
        backup=body.backup,
        pattern=body.pattern,
    )


def _persistence(body: schemas.SessionPersistenceIn | None) -> SessionPersistence | None:
    return None if body is None else SessionPersistence(**body.model_dump())


def _health(body: schemas.HealthCheckIn | None) -> HealthCheck | None:
    return None if body is None else HealthCheck(**body.model_dump())


def _tls(body: schemas.TlsIn | None) -> TlsSettings:
    return TlsSettings() if body is None else TlsSettings(**body.model_dump())


def _cache(body: schemas.CacheIn | None) -> CacheSettings:
    return CacheSettings() if body is None else CacheSettings(**body.model_dump())


def _timeouts(body: schemas.TimeoutsIn | None) -> Timeouts:
    return Timeouts() if body is None else Timeouts(**body.model_dump())


def _limits(body: schemas.LimitsIn | None) -> Limits:
    return Limits() if body is None else Limits(**body.model_dump())


def _toolforge(body: schemas.ToolforgeIn | None) -> ToolSettings | None:
    return None if body is None else ToolSettings(**body.model_dump())


def proxy_draft(body: schemas.ProxyCreate) -> tuple[Proxy, list[BackendSpec]]:
    """A draft Proxy (the service assigns id and project) and its backend specs."""
    draft = Proxy(
        id="",
        project="",
        hostname=body.hostname,
        path_prefix=body.path_prefix,
        backend_port=body.backend_port,
        algorithm=body.algorithm,
        session_persistence=_persistence(body.session_persistence),
        health_check=_health(body.health_check),
        tls=_tls(body.tls),
        cache=_cache(body.cache),
        timeouts=_timeouts(body.timeouts),
        limits=_limits(body.limits),
        hash_key=body.hash_key,
        toolforge=_toolforge(body.toolforge),
    )
    return draft, [backend_spec(b) for b in body.backends]


def proxy_changes(body: schemas.ProxyUpdate) -> dict[str, Any]:
    """Only the fields the client sent, as domain values."""
    changes: dict[str, Any] = {}
    for name in body.model_fields_set:
        value = getattr(body, name)
        converters: dict[str, Callable[[Any], Any]] = {
            "session_persistence": _persistence,
            "health_check": _health,
            "tls": _tls,
            "cache": _cache,
            "timeouts": _timeouts,
            "limits": _limits,
            "toolforge": _toolforge,
        }
        changes[name] = converters.get(name, lambda v: v)(value)
    return changes


def role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValidationError("role must be one of admin, member, reader", field="role") from None


def backend_out(proxy_id: str, backend: Backend, health: HealthFn) -> dict[str, Any]:
    out = schemas.BackendOut(**dataclasses.asdict(backend)).model_dump(mode="json")
    out.update(health(proxy_id, backend.id))
    return out


def proxy_out(proxy: Proxy, health: HealthFn) -> dict[str, Any]:
    fields = {f.name: getattr(proxy, f.name) for f in dataclasses.fields(proxy)}
    options = ("session_persistence", "health_check", "tls", "cache", "timeouts", "limits")
    for name in (*options, "toolforge"):
        value = fields[name]
        fields[name] = None if value is None else dataclasses.asdict(value)
    fields["backends"] = []
    # The rules the snapshot builder applies: a proxy that breaks one is not served.
    problems = validation.problems(proxy)
    fields["status"] = "error" if problems else "active"
    fields["errors"] = [{"field": p.field, "message": p.message} for p in problems]
    out = schemas.ProxyOut(**fields).model_dump(mode="json")
    out["backends"] = [backend_out(proxy.id, b, health) for b in proxy.backends]
    return out


def project_out(project: Project) -> dict[str, Any]:
    return schemas.ProjectOut(**dataclasses.asdict(project)).model_dump(mode="json")


def token_out(token: Token, secret: str | None = None) -> dict[str, Any]:
    fields = dataclasses.asdict(token)
    fields["role"] = token.role.value
    out = schemas.TokenOut(**fields, secret=secret).model_dump(mode="json")
    if secret is None:
        del out["secret"]
    return out


def zone_out(zone: Zone) -> dict[str, Any]:
    return schemas.ZoneOut(**dataclasses.asdict(zone)).model_dump(mode="json")


def change_out(change: Change) -> dict[str, Any]:
    return schemas.ChangeOut(**dataclasses.asdict(change)).model_dump(mode="json")
