"""Converters between wire schemas and domain objects; the only place that knows both."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any

from portway.api import schemas
from portway.cache.store import Purge, host_only
from portway.errors import ValidationError
from portway.model import Backend, Change, Project, Proxy, Role, Token, Zone
from portway.model.node import Node
from portway.model.proxy import OPTION_BY_NAME, OPTIONS, SETTINGS
from portway.model.purge_key import checked_key, hash_key
from portway.protocol import grammar
from portway.service import BackendSpec, proxy_problems

HealthFn = Callable[[str, str], dict[str, Any]]
PlaneFn = Callable[[str, int], dict[str, Any]]  # (proxy id, revision) → ``dataplane``


def no_plane_status(_proxy_id: str, _revision: int) -> dict[str, Any]:
    return {"applied": None, "error": None, "problems": []}


# Drops what a Purge matches from a proxy's cache on every data plane; entries dropped.
PurgeFn = Callable[[str, Purge], int]


def purge(body: schemas.PurgeIn) -> Purge:
    """A purge request as the data plane's ``Purge``. URLs are ``http(s)://host/target``
    or a bare target (any host of the proxy); targets and prefixes are origin-form, keys
    are the origin's tokens (visible ASCII, no spaces): none of it reaches the wire, but
    nothing else could match a stored response either."""
    urls = tuple(_purge_url(u) for u in body.urls)
    for prefix in body.prefixes:
        if not grammar.is_origin_form(prefix):
            raise ValidationError(
                "purge.prefixes must be paths such as /static/", field="purge.prefixes"
            )
    for key in body.keys:
        if not all(33 <= ord(c) < 127 and c != "," for c in key):
            raise ValidationError(
                "purge.keys must be visible ASCII without spaces or commas", field="purge.keys"
            )
    if not (urls or body.prefixes or body.keys):
        raise ValidationError("purge needs urls, prefixes or keys", field="purge")
    return Purge(
        urls=urls,
        prefixes=tuple(p.encode("ascii") for p in body.prefixes),
        tags=tuple(body.keys),
    )


def _purge_url(url: str) -> tuple[bytes | None, bytes]:
    host: str | None = None
    target = url
    for scheme in ("http://", "https://"):
        if url.lower().startswith(scheme):
            authority, slash, rest = url[len(scheme) :].partition("/")
            host, target = authority.rpartition("@")[2], slash + rest
    if (host is not None and not host) or not grammar.is_origin_form(target):
        raise ValidationError(
            "purge.urls must be http(s)://host/path or /path (origin-form)", field="purge.urls"
        )
    if host is None:
        return None, target.encode("ascii")
    return host_only(host.lower().encode("ascii", "replace")), target.encode("ascii")


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
    if value is None:
        return option.build(None)
    fields = value.model_dump()
    if name == "purge":
        # The one place a purge key is seen in clear: checked, then only its hash goes on.
        key = fields.pop("key")
        fields["key_hash"] = None if key is None else hash_key(checked_key(key))
    return option.build(fields)


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


def proxy_out(proxy: Proxy, health: HealthFn, plane: PlaneFn = no_plane_status) -> dict[str, Any]:
    fields = {f.name: getattr(proxy, f.name) for f in dataclasses.fields(proxy)}
    for option in OPTIONS:
        value = fields[option.name]
        fields[option.name] = None if value is None else dataclasses.asdict(value)
    fields["backends"] = []
    _hide_purge_key(fields)
    # The rules the snapshot builder applies: a proxy that breaks one is not served.
    problems = proxy_problems(proxy)
    fields["status"] = "error" if problems else "active"
    fields["errors"] = [{"field": p.field, "message": p.message} for p in problems]
    fields["dataplane"] = plane(proxy.id, proxy.revision)
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


def node_out(node: Node, now: datetime) -> dict[str, Any]:
    fields = dataclasses.asdict(node)
    del fields["report_interval"]
    return schemas.NodeOut(**fields, lost=node.lost(now)).model_dump(mode="json")


def change_out(change: Change) -> dict[str, Any]:
    fields = dataclasses.asdict(change)
    _walk_hiding(fields["before"])
    _walk_hiding(fields["after"])
    return schemas.ChangeOut(**fields).model_dump(mode="json")


def _walk_hiding(value: Any) -> None:
    """``_hide_purge_key`` on every proxy a change log value holds, however nested."""
    if isinstance(value, dict):
        _hide_purge_key(value)
        for item in value.values():
            _walk_hiding(item)
    elif isinstance(value, list):
        for item in value:
            _walk_hiding(item)


def _hide_purge_key(proxy: dict[str, Any]) -> None:
    """A proxy's fields (an object's, or a change log's copy) as answers show them: the
    purge key's hash is kept from every reader, as the key is (only whether one is set),
    so that no one may try guesses against it."""
    purge = proxy.get("purge")
    if isinstance(purge, dict) and "key_hash" in purge:
        purge["key_set"] = purge.pop("key_hash") is not None
