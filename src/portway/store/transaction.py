"""One write transaction: holds the revision lock, writes rows, records one change (or
a batch of changes, each with its revision: ``next_change``).

Every write in Portway goes through exactly one ``Transaction``. It takes the global
revision lock first (``SELECT ... FOR UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` already
holds SQLite's single write lock), so the service's checks inside the transaction see
every committed write, and revisions are strictly ordered and gap-free (but for the one
jump of ``skip_past``, after a failover lost commits).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from portway.errors import StoreError
from portway.model import Backend, Certificate, Project, Proxy, Token, Zone
from portway.model.quota import Quota
from portway.store import rows
from portway.store.keyring import NO_SECRETS, SecretBox
from portway.store.reader import Reader
from portway.store.schema import (
    backends,
    certificates,
    change_proxies,
    changes,
    projects,
    proxies,
    quotas,
    revision,
    source_records,
    tokens,
    zones,
)

NOTIFY_CHANNEL = "portway_revision"
# An actor's name is recorded as its first characters that fit the change log's column:
# a Keystone user may be named with 255 characters, "keystone:" comes on top, and a
# write must never fail (PostgreSQL refuses an over-long value) because of who made it.
ACTOR_WIDTH: int = changes.c.actor.type.length  # type: ignore[attr-defined]


class Transaction(Reader):
    """Reads plus writes inside one locked transaction; ``revision`` is the new revision."""

    def __init__(self, conn: Connection, actor: str, secrets: SecretBox = NO_SECRETS) -> None:
        super().__init__(conn, secrets)
        self.actor = actor[:ACTOR_WIDTH]
        self.now = datetime.now(UTC)
        self.revision = self._bump()
        self._recorded = False
        # What this write added to each quota's use, net of what it removed, keyed by
        # (quota name, project or proxy id): the service checks the keys that grew.
        self.growth: Counter[tuple[str, str]] = Counter()

    def _bump(self, past: int = -1) -> int:
        current = sa.select(revision.c.value).where(revision.c.id == 1)
        if self.conn.dialect.name == "postgresql":
            current = current.with_for_update()
        new = max(int(self.conn.execute(current).scalar_one()), past) + 1
        self.conn.execute(sa.update(revision).where(revision.c.id == 1).values(value=new))
        if self.conn.dialect.name == "postgresql":
            # Delivered on commit only, so listeners never see an uncommitted revision.
            notify = sa.text("SELECT pg_notify(:channel, :payload)")
            self.conn.execute(notify, {"channel": NOTIFY_CHANNEL, "payload": str(new)})
        return new

    def record(
        self,
        *,
        kind: str,
        action: str,
        object_id: str,
        project: str | None,
        before: Any = None,
        after: Any = None,
        proxy_id: str | None = None,
    ) -> None:
        """Append this transaction's change-log row (exactly one per transaction)."""
        if self._recorded:
            raise StoreError("a write transaction records exactly one change")
        self._recorded = True
        self.conn.execute(
            sa.insert(changes).values(
                revision=self.revision,
                project=project,
                actor=self.actor,
                kind=kind,
                action=action,
                object_id=object_id,
                proxy_id=proxy_id,
                before=rows.to_json(before),
                after=rows.to_json(after),
                at=self.now,
            )
        )

    def skip_past(self, seen: int) -> None:
        """Give this write a revision above ``seen`` (before it records its change).

        After a failover lost commits, a node has applied revisions the store no longer
        holds; the next revision must be above every one a node applied, or the node
        would take it for one it already has. This leaves a gap in the numbers, which
        is the point: they were used by writes that are gone."""
        if self._recorded:
            raise StoreError("skip_past() before the change is recorded")
        if seen >= self.revision:
            self.revision = self._bump(seen)

    def next_change(self) -> None:
        """Start the next change of a transaction that makes several (a batch of tool
        resyncs): it gets a revision of its own and records its own row, so the log
        still holds one row per change and revisions stay gap-free; all of them commit,
        or roll back, together."""
        self.check_recorded()
        self.revision = self._bump()
        self._recorded = False

    def check_recorded(self) -> None:
        if not self._recorded:
            raise StoreError("write transaction committed without a change record")

    # -- projects, tokens, zones -------------------------------------------------------

    def mark_changed(self, proxy_id: str) -> None:
        """Name one more proxy this write touched, for the change feed (one write that
        changes several proxies; ``record``'s ``proxy_id`` names at most one)."""
        row = {"revision": self.revision, "proxy_id": proxy_id}
        self.conn.execute(sa.insert(change_proxies).values(row))

    def put_source_record(self, source: str, key: str, value: Any) -> None:
        """Keep JSON ``value`` for ``source`` under ``key`` (None: forget it)."""
        c = source_records.c
        self.conn.execute(sa.delete(source_records).where(c.source == source, c.key == key))
        if value is not None:
            row = {"source": source, "key": key, "value": value}
            self.conn.execute(sa.insert(source_records).values(row))

    def insert_project(self, project: Project) -> None:
        self.conn.execute(sa.insert(projects).values(name=project.name, created_at=self.now))

    def delete_project(self, name: str) -> None:
        self.conn.execute(sa.delete(quotas).where(quotas.c.project == name))
        self.conn.execute(sa.delete(projects).where(projects.c.name == name))

    def put_quota(self, project: str, quota: Quota) -> None:
        """Make ``quota`` the project's own (replacing any it had)."""
        self.conn.execute(sa.delete(quotas).where(quotas.c.project == project))
        self.conn.execute(sa.insert(quotas).values(rows.quota_to_row(project, quota)))

    def insert_token(self, token: Token, secret_hash: str) -> None:
        self.conn.execute(
            sa.insert(tokens).values(
                id=token.id,
                secret_hash=secret_hash,
                role=token.role.value,
                project=token.project,
                description=token.description,
                created_at=self.now,
                expires_at=token.expires_at,
            )
        )

    def delete_token(self, token_id: str) -> None:
        self.conn.execute(sa.delete(tokens).where(tokens.c.id == token_id))

    def insert_zone(self, zone: Zone) -> None:
        self.conn.execute(sa.insert(zones).values(rows.zone_to_row(zone)))

    def delete_zone(self, name: str) -> None:
        self.conn.execute(sa.delete(zones).where(zones.c.name == name))

    # -- proxies and backends ----------------------------------------------------------

    def insert_proxy(self, proxy: Proxy) -> None:
        """Insert ``proxy`` and its backends; timestamps and revision come from here."""
        row = rows.proxy_to_row(proxy)
        row.update(created_at=self.now, updated_at=self.now, revision=self.revision)
        self.conn.execute(sa.insert(proxies).values(row))
        self.growth["proxies", proxy.project] += 1
        self.growth["cache_bytes", proxy.project] += proxy.cache.reserved_bytes
        for backend in proxy.backends:
            self.insert_backend(proxy.id, backend)

    def update_proxy(self, proxy: Proxy) -> None:
        """Overwrite the proxy row (not its backends) and stamp it with this revision."""
        row = rows.proxy_to_row(proxy)
        for key in ("id", "created_at"):
            del row[key]
        row.update(updated_at=self.now, revision=self.revision)
        self._cache_shrinks(proxy.id)
        self.growth["cache_bytes", proxy.project] += proxy.cache.reserved_bytes
        self.conn.execute(sa.update(proxies).where(proxies.c.id == proxy.id).values(row))

    def _cache_shrinks(self, proxy_id: str) -> None:
        """The proxy's stored cache reservation leaves its project's cache_bytes use."""
        query = sa.select(proxies.c.project, proxies.c.cache).where(proxies.c.id == proxy_id)
        for project, cache in self.conn.execute(query):
            self.growth["cache_bytes", project] -= rows.reserved_cache_bytes(cache)

    def touch_proxy(self, proxy_id: str) -> None:
        """Mark a proxy changed because its backends changed."""
        query = sa.update(proxies).where(proxies.c.id == proxy_id)
        self.conn.execute(query.values(updated_at=self.now, revision=self.revision))

    def delete_proxy(self, proxy_id: str) -> None:
        project = self.conn.execute(sa.select(proxies.c.project).where(proxies.c.id == proxy_id))
        for name in project.scalars():
            self.growth["proxies", name] -= 1
        self._cache_shrinks(proxy_id)
        # Backends go explicitly too: SQLite enforces ON DELETE CASCADE only with the
        # foreign_keys pragma, and deleting them here keeps both dialects identical.
        self.conn.execute(sa.delete(backends).where(backends.c.proxy_id == proxy_id))
        self.conn.execute(sa.delete(proxies).where(proxies.c.id == proxy_id))

    def insert_backend(self, proxy_id: str, backend: Backend) -> None:
        self.insert_backends(proxy_id, (backend,))

    def insert_backends(self, proxy_id: str, members: Sequence[Backend]) -> None:
        """One statement for the lot: a thousand backends are one executemany, not a
        thousand round trips each holding the GIL that the API's loop waits for."""
        if members:
            values = [rows.backend_to_row(b, proxy_id) for b in members]
            self.conn.execute(sa.insert(backends), values)
            self.growth["backends_per_proxy", proxy_id] += len(members)

    def update_backend(self, proxy_id: str, backend: Backend) -> None:
        row = rows.backend_to_row(backend, proxy_id)
        del row["id"]
        self.conn.execute(sa.update(backends).where(backends.c.id == backend.id).values(row))

    def delete_backend(self, backend_id: str) -> None:
        self.delete_backends((backend_id,))

    def delete_backends(self, backend_ids: Sequence[str]) -> None:
        if not backend_ids:
            return
        chosen = backends.c.id.in_(backend_ids)
        owners = self.conn.execute(sa.select(backends.c.proxy_id).where(chosen))
        for proxy_id in owners.scalars():
            self.growth["backends_per_proxy", proxy_id] -= 1
        self.conn.execute(sa.delete(backends).where(chosen))

    # -- certificates ----------------------------------------------------------------

    def insert_certificate(self, cert: Certificate) -> None:
        """Insert ``cert`` with its key sealed; its creation time comes from here."""
        row = rows.certificate_to_row(cert, self.secrets)
        row["created_at"] = self.now
        self.conn.execute(sa.insert(certificates).values(row))
        if cert.project is not None:
            self.growth["certificates", cert.project] += 1

    def delete_certificate(self, cert_id: str) -> None:
        owner = self.conn.execute(
            sa.select(certificates.c.project).where(certificates.c.id == cert_id)
        )
        for project in owner.scalars():
            self.growth["certificates", project] -= 1
        self.conn.execute(sa.delete(certificates).where(certificates.c.id == cert_id))

    def reseal_certificate_keys(self, *, plain_only: bool = False) -> int:
        """Seal every certificate key (or only those still in plain text) again with the
        current key; returns how many. A key that does not open fails the whole write."""
        c = certificates.c
        query = sa.select(c.id, c.key_kid, c.key_sealed)
        if plain_only:
            query = query.where(c.key_kid.is_(None))
        found = self.conn.execute(query.order_by(c.id)).mappings().all()
        for row in found:
            key_pem = rows.certificate_key(row, self.secrets)
            values = rows.sealed_key_columns(row["id"], key_pem, self.secrets)
            self.conn.execute(sa.update(certificates).where(c.id == row["id"]).values(values))
        return len(found)
