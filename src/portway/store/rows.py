"""Converters between storage rows and domain objects; nothing else knows both shapes."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from portway.model import Backend, Certificate, Change, Project, Proxy, Role, Token, Zone
from portway.model.node import Node
from portway.model.proxy import OPTIONS, CacheSettings, Option
from portway.model.quota import QUOTA_NAMES, Quota
from portway.store.keyring import Sealed, SecretBox

Row = Mapping[Any, Any]  # sqlalchemy's RowMapping is keyed by str or Column


def utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; every timestamp Portway writes is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _required_utc(value: datetime) -> datetime:
    result = utc(value)
    assert result is not None
    return result


def backend_from_row(row: Row) -> Backend:
    return Backend(
        id=row["id"],
        address=row["address"],
        port=row["port"],
        weight=row["weight"],
        backup=bool(row["backup"]),
        tls=bool(row["tls"]),
        source=row["source"],
        url=row["url"],
        pattern=row["pattern"] or None,
    )


def backend_to_row(backend: Backend, proxy_id: str) -> dict[str, Any]:
    return {
        "id": backend.id,
        "proxy_id": proxy_id,
        "address": backend.address,
        "port": backend.port,
        "weight": backend.weight,
        "backup": backend.backup,
        "tls": backend.tls,
        "source": backend.source,
        "url": backend.url,
        "pattern": backend.pattern or "",  # "" stands for None (see schema.backends)
    }


# A proxy's option objects are stored as JSON columns named after their settings.
JSON_COLUMNS = frozenset(o.name for o in OPTIONS)
_CACHE_OPTION = next(o for o in OPTIONS if o.name == "cache")


def reserved_cache_bytes(cache: Any) -> int:
    """A ``proxies.cache`` value (decoded JSON, NULL for old rows) → what it counts
    against the ``cache_bytes`` quota (the model's rule, ``CacheSettings.reserved_bytes``)."""
    settings: CacheSettings = _CACHE_OPTION.build(cache)
    return settings.reserved_bytes


class BulkProxyDecoder:
    """Decodes many proxies rows whose option columns were selected as JSON text.

    Nearly every proxy carries the same few option objects (the defaults, a house health
    check), so each distinct JSON text is decoded once and its frozen object shared: a
    100 000-proxy load does a handful of ``json.loads`` instead of 600 000, and the
    snapshot holds one ``Timeouts`` object, not 100 000 equal ones.
    """

    def __init__(self, *, timestamps: bool = True) -> None:
        self._timestamps = timestamps
        self._memo: dict[tuple[str, str | None], Any] = {}
        self._strings: dict[str, str] = {}

    def share(self, text: str) -> str:
        """One object per distinct value of a column that repeats (project, algorithm,
        source, backend address): about 200 bytes less per proxy in every snapshot."""
        return self._strings.setdefault(text, text)

    def option(self, option: Option, text: str | None) -> Any:
        key = (option.name, text)
        found = self._memo.get(key, _MISSING)
        if found is _MISSING:
            found = self._memo[key] = option.build(None if text is None else json.loads(text))
        return found

    def proxy(self, row: Row, backends: tuple[Backend, ...]) -> Proxy:
        return _proxy(row, backends, self.option, self.share, self._timestamps)


def _same(text: str) -> str:
    return text


def _decoded_option(option: Option, value: Any) -> Any:
    """An option column already decoded by SQLAlchemy's JSON type → its frozen object."""
    return option.build(value)


def proxy_from_row(row: Row, backends: tuple[Backend, ...] = ()) -> Proxy:
    """A proxies row selected with its JSON columns decoded (single-object reads)."""
    return _proxy(row, backends, _decoded_option, _same)


def _proxy(
    row: Row,
    backends: tuple[Backend, ...],
    option: Callable[[Option, Any], Any],
    share: Callable[[str], str],
    timestamps: bool = True,
) -> Proxy:
    # A NULL option column (rows written before migration 0002 have no timeouts or
    # limits) decodes to the option's default.
    options = {o.name: option(o, row[o.name]) for o in OPTIONS}
    return Proxy(
        id=row["id"],
        project=share(row["project"]),
        hostname=row["hostname"],
        path_prefix=share(row["path_prefix"]),
        backend_port=row["backend_port"],
        algorithm=share(row["algorithm"]),
        hash_key=row["hash_key"],
        listen_port=row["listen_port"] or None,  # 0: the shared listeners (schema.proxies)
        protocol=share(row["protocol"]),
        backends=backends,
        source=share(row["source"]),
        created_at=utc(row["created_at"]) if timestamps else None,
        updated_at=utc(row["updated_at"]) if timestamps else None,
        revision=row["revision"],
        **options,
    )


_MISSING = object()


def proxy_to_row(proxy: Proxy) -> dict[str, Any]:
    """The proxies row for ``proxy`` (its backends go to their own table)."""
    row = {f.name: getattr(proxy, f.name) for f in dataclasses.fields(proxy)}
    del row["backends"]
    row["listen_port"] = proxy.listen_port or 0
    for o in OPTIONS:
        value = row[o.name]
        row[o.name] = None if value is None else dataclasses.asdict(value)
    return row


def project_from_row(row: Row) -> Project:
    return Project(name=row["name"], created_at=utc(row["created_at"]))


def quota_from_row(row: Row) -> Quota:
    return Quota(**{name: row[name] for name in QUOTA_NAMES})


def quota_to_row(project: str, quota: Quota) -> dict[str, Any]:
    return {"project": project, **{name: getattr(quota, name) for name in QUOTA_NAMES}}


def token_from_row(row: Row) -> Token:
    return Token(
        id=row["id"],
        project=row["project"],
        role=Role(row["role"]),
        description=row["description"],
        created_at=utc(row["created_at"]),
        expires_at=utc(row["expires_at"]),
    )


def zone_from_row(row: Row) -> Zone:
    return Zone(
        name=row["name"],
        project=row["project"],
        shared=bool(row["shared"]),
        shared_host=bool(row["shared_host"]),
        default=bool(row["default"]),
        deprecated=bool(row["deprecated"]),
    )


def zone_to_row(zone: Zone) -> dict[str, Any]:
    return dataclasses.asdict(zone)


def change_from_row(row: Row) -> Change:
    return Change(
        revision=row["revision"],
        project=row["project"],
        actor=row["actor"],
        kind=row["kind"],
        action=row["action"],
        object_id=row["object_id"],
        before=row["before"],
        after=row["after"],
        at=_required_utc(row["at"]),
    )


def certificate_from_row(row: Row) -> Certificate:
    """The certificate without its key: all the API and the service ever need."""
    return Certificate(
        id=row["id"],
        project=row["project"],
        name=row["name"],
        chain_pem=row["chain_pem"],
        names=tuple(row["names"]),
        not_after=utc(row["not_after"]),
        fingerprint=row["fingerprint"],
        created_at=utc(row["created_at"]),
    )


def key_context(cert_id: str) -> str:
    """The associated data of a certificate's sealed key: it opens in this row only."""
    return f"certificate:{cert_id}"


def certificate_key(row: Row, box: SecretBox) -> str:
    """The row's private key in PEM, opened with ``box``."""
    kid = row["key_kid"]
    if kid is None:  # written before migration 0005; sealed at the next start (sealing.py)
        return str(row["key_sealed"])
    return box.open(Sealed(kid=kid, text=row["key_sealed"]), key_context(row["id"]))


def certificate_with_key(row: Row, box: SecretBox) -> Certificate:
    """The certificate with its key, for the data plane."""
    return dataclasses.replace(certificate_from_row(row), key_pem=certificate_key(row, box))


def certificate_to_row(cert: Certificate, box: SecretBox) -> dict[str, Any]:
    """The certificates row, its key sealed by ``box`` (never stored in plain text)."""
    row = dataclasses.asdict(cert)
    del row["key_pem"]
    row["names"] = list(cert.names)
    row.update(sealed_key_columns(cert.id, cert.key_pem, box))
    return row


def sealed_key_columns(cert_id: str, key_pem: str, box: SecretBox) -> dict[str, str]:
    sealed = box.seal(key_pem, key_context(cert_id))
    return {"key_sealed": sealed.text, "key_kid": sealed.kid}


def to_json(value: Any) -> Any:
    """A JSON-safe copy of a domain object for the change log's before/after columns."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def node_from_row(row: Row) -> Node:
    return Node(
        name=row["name"],
        addresses=tuple(row["addresses"]),
        version=row["version"],
        applied_revision=int(row["applied_revision"]),
        digest=row["digest"],
        started_at=_required_utc(row["started_at"]),
        last_seen=_required_utc(row["last_seen"]),
        report_interval=float(row["report_interval"]),
    )


def node_row(node: Node) -> dict[str, Any]:
    return {
        "name": node.name,
        "addresses": list(node.addresses),
        "version": node.version,
        "applied_revision": node.applied_revision,
        "digest": node.digest,
        "started_at": node.started_at,
        "last_seen": node.last_seen,
        "report_interval": node.report_interval,
    }
