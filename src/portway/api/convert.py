"""Converters between wire schemas and domain objects; the only place that knows both."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from portway.api import schemas
from portway.errors import ValidationError
from portway.model import Backend, Change, Project, Proxy, Role, Token, Zone
from portway.model.proxy import OPTION_BY_NAME, OPTIONS, SETTINGS
from portway.service import BackendSpec, proxy_problems

HealthFn = Callable[[str, str], dict[str, Any]]


def backend_spec(body: schemas.BackendIn) -> BackendSpec:
    return BackendSpec(
        address=body.address,
        port=body.port,
        weight=body.weight,
        backup=body.backup,
        tls=body.tls,
        pattern=body.pattern,
    )


def _setting(name: str, value: Any) -> Any:
    """A setting's wire value as its domain value (option sub-objects → option objects)."""
    option = OPTION_BY_NAME.get(name)
    if option is None:
        return value
    return option.build(None if value is None else value.model_dump())


def proxy_draft(body: schemas.ProxyCreate) -> tuple[Proxy, list[BackendSpec]]:
    """A draft Proxy (the service assigns id and project) and its backend specs."""
    settings = {name: _setting(name, getattr(body, name)) for name in SETTINGS}
    draft = Proxy(id="", project="", **settings)
    return draft, [backend_spec(b) for b in body.backends]


def proxy_changes(body: schemas.ProxyUpdate) -> dict[str, Any]:
    """Only the settings the client sent, as domain values."""
    return {name: _setting(name, getattr(body, name)) for name in body.model_fields_set}


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
    for option in OPTIONS:
        value = fields[option.name]
        fields[option.name] = None if value is None else dataclasses.asdict(value)
    fields["backends"] = []
    # The purge key is a secret: it is written, never read back (only whether one is set).
    purge = fields["purge"]
    purge["key_set"] = purge.pop("key") is not None
    # The rules the snapshot builder applies: a proxy that breaks one is not served.
    problems = proxy_problems(proxy)
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
