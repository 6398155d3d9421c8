"""Read queries over one connection, shared by ``Store`` (own connection) and
``Transaction`` (inside a write, after the revision lock, so checks see committed state)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from portway.errors import StoreError
from portway.model import Backend, Certificate, Change, Project, Proxy, Token, Zone
from portway.model.node import Node
from portway.model.quota import Quota
from portway.store import rows
from portway.store.keyring import NO_SECRETS, SecretBox
from portway.store.schema import (
    backends,
    certificates,
    change_proxies,
    changes,
    nodes,
    projects,
    proxies,
    quotas,
    revision,
    source_records,
    tokens,
    zones,
)

log = logging.getLogger(__name__)

# Bound parameters per IN (...) list: SQLite allows 32766, PostgreSQL 65535.
_CHUNK = 10_000
# Certificates as the API shows them: the sealed key is read only for the data plane.
_CERTIFICATE_PUBLIC = [c for c in certificates.c if c.name not in ("key_sealed", "key_kid")]
# Revisions are BIGINT: a larger bound overflows SQLite's integer and PostgreSQL's bigint.
MAX_REVISION = 2**63 - 1


class Reader:
    """Typed read queries on an open connection; ``secrets`` opens sealed keys."""

    def __init__(self, conn: Connection, secrets: SecretBox = NO_SECRETS) -> None:
        self.conn = conn
        self.secrets = secrets

    def current_revision(self) -> int:
        value = self.conn.execute(sa.select(revision.c.value).where(revision.c.id == 1))
        return int(value.scalar_one())

    def load_proxies(
        self, ids: Iterable[str] | None = None, *, timestamps: bool = True
    ) -> list[Proxy]:
        """Proxies with their backends, sorted by id: one query per table (per chunk).

        ``timestamps=False`` leaves created_at/updated_at unset: snapshots never show
        them, and parsing two datetimes per row is a fifth of a 100 000-proxy load."""
        if ids is None:
            return self._load(None, timestamps)
        wanted = sorted(set(ids))
        result: list[Proxy] = []
        for start in range(0, len(wanted), _CHUNK):
            result.extend(self._load(wanted[start : start + _CHUNK], timestamps))
        return result

    def _load(self, ids: list[str] | None, timestamps: bool) -> list[Proxy]:
        # Option columns come back as JSON text so that BulkProxyDecoder can decode each
        # distinct value once (see there); CAST works the same on SQLite and PostgreSQL.
        columns = [
            sa.cast(c, sa.Text).label(c.name) if c.name in rows.JSON_COLUMNS else c
            for c in proxies.c
            if timestamps or c.name not in ("created_at", "updated_at")
        ]
        pq = sa.select(*columns).order_by(proxies.c.id)
        b = backends.c
        bq = sa.select(
            b.id,
            b.proxy_id,
            b.address,
            b.port,
            b.weight,
            b.backup,
            b.tls,
            b.source,
            b.url,
            b.pattern,
        )
        bq = bq.order_by(b.proxy_id, b.address, b.port, b.pattern)
        if ids is not None:
            pq = pq.where(proxies.c.id.in_(ids))
            bq = bq.where(backends.c.proxy_id.in_(ids))
        decoder = rows.BulkProxyDecoder(timestamps=timestamps)
        share = decoder.share
        by_proxy: dict[str, list[Backend]] = defaultdict(list)
        # Plain tuples: RowMapping look-ups cost more than building the Backend itself.
        found = self.conn.execute(bq)
        for bid, proxy_id, address, port, weight, backup, tls, source, url, pattern in found:
            by_proxy[proxy_id].append(
                Backend(
                    id=bid,
                    address=share(address),
                    port=port,
                    weight=weight,
                    backup=bool(backup),
                    tls=bool(tls),
                    source=share(source),
                    url=url,
                    pattern=share(pattern) if pattern else None,  # "" stands for None
                )
            )
        return [
            decoder.proxy(row, tuple(by_proxy.get(row["id"], ())))
            for row in self.conn.execute(pq).mappings().all()
        ]

    def find_proxies(
        self,
        *,
        project: str | None = None,
        hostname: str | None = None,
        listen_port: int | None = None,
    ) -> list[Proxy]:
        """Proxies filtered by project, hostname and/or their own port (``listen_port``;
        None: any, including the shared listeners), with backends, sorted by id."""
        query = sa.select(proxies.c.id)
        if listen_port is not None:
            query = query.where(proxies.c.listen_port == listen_port)
        if project is not None:
            query = query.where(proxies.c.project == project)
        if hostname is not None:
            query = query.where(proxies.c.hostname == hostname)
        return self.load_proxies(self.conn.execute(query).scalars().all())

    def get_proxy(self, proxy_id: str) -> Proxy | None:
        found = self.load_proxies([proxy_id])
        return found[0] if found else None

    def hostname_projects(self, hostname: str) -> set[str]:
        """The projects that hold at least one proxy on ``hostname``."""
        query = sa.select(proxies.c.project).where(proxies.c.hostname == hostname).distinct()
        return set(self.conn.execute(query).scalars())

    def get_project(self, name: str) -> Project | None:
        row = self.conn.execute(sa.select(projects).where(projects.c.name == name)).mappings()
        first = row.first()
        return rows.project_from_row(first) if first else None

    def list_projects(self) -> list[Project]:
        query = sa.select(projects).order_by(projects.c.name)
        return [rows.project_from_row(r) for r in self.conn.execute(query).mappings()]

    def count_proxies(self, project: str) -> int:
        query = sa.select(sa.func.count()).select_from(proxies).where(proxies.c.project == project)
        return int(self.conn.execute(query).scalar_one())

    def get_quota(self, project: str) -> Quota:
        """The project's own quota (every field None when it has none)."""
        query = sa.select(quotas).where(quotas.c.project == project)
        first = self.conn.execute(query).mappings().first()
        return rows.quota_from_row(first) if first else Quota()

    def cache_quotas(self) -> dict[str, int]:
        """The projects whose own quota sets cache_bytes, with it (the data plane's)."""
        c = quotas.c
        query = sa.select(c.project, c.cache_bytes).where(c.cache_bytes.is_not(None))
        return {str(p): int(v) for p, v in self.conn.execute(query)}

    def quota_use(self, name: str, key: str) -> tuple[str, int] | None:
        """(project, use) of quota ``name`` at ``key`` (a project, or a proxy id for
        backends_per_proxy); None when ``key`` no longer exists. cache_bytes: what the
        project's caches reserve (``CacheSettings.reserved_bytes``), summed."""
        if name == "backends_per_proxy":
            owner = sa.select(proxies.c.project).where(proxies.c.id == key)
            project = self.conn.execute(owner).scalar_one_or_none()
            if project is None:
                return None
            query = sa.select(sa.func.count()).where(backends.c.proxy_id == key)
            return str(project), int(self.conn.execute(query).scalar_one())
        if name == "proxies":
            return key, self.count_proxies(key)
        if name == "certificates":
            query = sa.select(sa.func.count()).where(certificates.c.project == key)
            return key, int(self.conn.execute(query).scalar_one())
        if name == "cache_bytes":
            query = sa.select(proxies.c.cache).where(proxies.c.project == key)
            return key, sum(
                rows.reserved_cache_bytes(c) for c in self.conn.execute(query).scalars()
            )
        raise StoreError(f"no use is counted for quota {name}")

    def token_by_hash(self, secret_hash: str) -> Token | None:
        query = sa.select(tokens).where(tokens.c.secret_hash == secret_hash)
        first = self.conn.execute(query).mappings().first()
        return rows.token_from_row(first) if first else None

    def list_tokens(self, project: str | None) -> list[Token]:
        """Tokens of ``project``; ``None`` lists the service-wide (admin) tokens."""
        cond = tokens.c.project.is_(None) if project is None else tokens.c.project == project
        query = sa.select(tokens).where(cond).order_by(tokens.c.created_at, tokens.c.id)
        return [rows.token_from_row(r) for r in self.conn.execute(query).mappings()]

    def admin_token_exists(self) -> bool:
        query = sa.select(tokens.c.id).where(tokens.c.project.is_(None), tokens.c.role == "admin")
        return self.conn.execute(query.limit(1)).first() is not None

    def list_nodes(self) -> list[Node]:
        query = sa.select(nodes).order_by(nodes.c.name)
        return [rows.node_from_row(r) for r in self.conn.execute(query).mappings()]

    def list_zones(self) -> list[Zone]:
        query = sa.select(zones).order_by(zones.c.name)
        return [rows.zone_from_row(r) for r in self.conn.execute(query).mappings()]

    def list_changes(
        self, *, project: str | None, since: int = 0, limit: int = 100
    ) -> list[Change]:
        """Change-log rows after ``since``, newest first; ``project=None`` means all."""
        if since >= MAX_REVISION or limit <= 0:
            return []
        query = sa.select(changes).where(changes.c.revision > max(since, -1))
        if project is not None:
            query = query.where(changes.c.project == project)
        query = query.order_by(changes.c.revision.desc()).limit(min(limit, MAX_REVISION))
        return [rows.change_from_row(r) for r in self.conn.execute(query).mappings()]

    def revision_marks(self, revisions: Iterable[int]) -> dict[int, str]:
        """A fingerprint of the write committed as each revision (absent: no such write).

        A node compares the mark of the revision it applied with the store's: after a
        failover to a replica that had not replayed the last commits, the number may
        exist again for another write, or not at all (docs/ha.md)."""
        c = changes.c
        wanted = sorted(set(revisions))
        query = sa.select(c.revision, c.at, c.kind, c.action, c.object_id)
        query = query.where(c.revision.in_(wanted))
        return {
            int(rev): f"{rows.utc(at)} {kind} {action} {object_id}"
            for rev, at, kind, action, object_id in self.conn.execute(query)
        }

    def changed_proxy_ids(self, since_revision: int) -> set[str]:
        # Only the revision bound goes to SQL: with "proxy_id IS NOT NULL" as well, SQLite
        # picks the proxy_id index and walks the whole change log on every reconcile.
        query = sa.select(changes.c.proxy_id).where(changes.c.revision > since_revision)
        found = {str(v) for v in self.conn.execute(query).scalars() if v is not None}
        more = sa.select(change_proxies.c.proxy_id)
        more = more.where(change_proxies.c.revision > since_revision)
        return found | {str(v) for v in self.conn.execute(more).scalars()}

    # -- what sources remember -------------------------------------------------------

    def get_source_record(self, source: str, key: str) -> Any:
        """The JSON value ``source`` keeps under ``key``, or None."""
        c = source_records.c
        query = sa.select(c.value).where(c.source == source, c.key == key)
        return self.conn.execute(query).scalar_one_or_none()

    def list_source_records(self, source: str) -> dict[str, Any]:
        c = source_records.c
        query = sa.select(c.key, c.value).where(c.source == source).order_by(c.key)
        return {str(k): v for k, v in self.conn.execute(query)}

    # -- certificates ----------------------------------------------------------------

    def get_certificate(self, cert_id: str) -> Certificate | None:
        """The certificate without its key."""
        query = sa.select(*_CERTIFICATE_PUBLIC).where(certificates.c.id == cert_id)
        first = self.conn.execute(query).mappings().first()
        return rows.certificate_from_row(first) if first else None

    def list_certificates(self, project: str) -> list[Certificate]:
        """The project's certificates, without their keys."""
        query = (
            sa.select(*_CERTIFICATE_PUBLIC)
            .where(certificates.c.project == project)
            .order_by(certificates.c.created_at, certificates.c.id)
        )
        return [rows.certificate_from_row(r) for r in self.conn.execute(query).mappings()]

    def load_certificates(self, ids: Iterable[str]) -> list[Certificate]:
        """Certificates with their keys opened, by id, sorted by id. Missing ids are
        skipped, and so (with an error logged) is a key that does not open: one broken
        row must not stop the configuration of every other tenant."""
        wanted = sorted(set(ids))
        result: list[Certificate] = []
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            query = sa.select(certificates).where(certificates.c.id.in_(chunk))
            for row in self.conn.execute(query.order_by(certificates.c.id)).mappings():
                try:
                    result.append(rows.certificate_with_key(row, self.secrets))
                except StoreError as err:
                    log.error("certificate %s left out of the configuration: %s", row["id"], err)
        return result

    def key_usage(self) -> dict[str | None, int]:
        """How many certificate keys each key id sealed; ``None``: still in plain text."""
        c = certificates.c
        query = sa.select(c.key_kid, sa.func.count()).group_by(c.key_kid)
        return {kid: int(n) for kid, n in self.conn.execute(query)}
