"""The SQLAlchemy Core schema: the storage rows, kept apart from the domain objects.

The Alembic migrations in ``migrations/versions`` create exactly this schema; a test
compares the two so they cannot drift apart.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Timestamps are stored as UTC; SQLite hands them back naive, rows.py re-attaches UTC.
_TS = sa.DateTime(timezone=True)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("created_at", _TS, nullable=False),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column(
        "project", sa.String(64), sa.ForeignKey("projects.name", ondelete="CASCADE"), index=True
    ),
    sa.Column("description", sa.String(255), nullable=False, server_default=""),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("expires_at", _TS),
)

proxies = sa.Table(
    "proxies",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "project",
        sa.String(64),
        sa.ForeignKey("projects.name", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("path_prefix", sa.String(1024), nullable=False),
    sa.Column("backend_port", sa.Integer, nullable=False),
    sa.Column("algorithm", sa.String(32), nullable=False),
    sa.Column("session_persistence", sa.JSON),
    sa.Column("health_check", sa.JSON),
    sa.Column("tls", sa.JSON, nullable=False),
    sa.Column("cache", sa.JSON, nullable=False),
    sa.Column("timeouts", sa.JSON),
    sa.Column("limits", sa.JSON),
    sa.Column("hash_key", sa.String(255)),
    sa.Column("toolforge", sa.JSON),  # migration 0007: a Toolforge tool's proxy
    sa.Column("privacy", sa.JSON),  # migration 0009: whether the client address goes upstream
    sa.Column("rewrite", sa.JSON),  # migration 0010: the backend path prefix
    sa.Column("purge", sa.JSON),  # migration 0012: who may PURGE cached URLs
    # Migration 0011 (issue 13): the proxy's own port; 0 stands for None (the shared
    # listeners), so the unique constraint below holds there too (NULLs never clash).
    sa.Column("listen_port", sa.Integer, nullable=False, server_default="0"),
    sa.Column("protocol", sa.String(32), nullable=False, server_default="http"),
    sa.Column("stream", sa.JSON),  # migration 0011: tcp and tls-passthrough settings
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("created_at", _TS, nullable=False),
    sa.Column("updated_at", _TS, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.UniqueConstraint(
        "hostname", "path_prefix", "listen_port", name="uq_proxies_hostname_path_prefix_port"
    ),
)

backends = sa.Table(
    "backends",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "proxy_id",
        sa.String(32),
        sa.ForeignKey("proxies.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("address", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("weight", sa.Integer, nullable=False),
    sa.Column("backup", sa.Boolean, nullable=False),
    sa.Column("tls", sa.Boolean, nullable=False, server_default=sa.false()),  # migration 0008
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("url", sa.String(512)),  # as the dynamicproxy API got it (migration 0006)
    # Migration 0007: a Toolforge route pattern; "" for every other backend, so that the
    # constraint below still makes address:port unique among those (NULLs never clash).
    sa.Column("pattern", sa.String(1024), nullable=False, server_default=""),
    sa.UniqueConstraint(
        "proxy_id", "address", "port", "pattern", name="uq_backends_proxy_address_port_pattern"
    ),
)

zones = sa.Table(
    "zones",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("project", sa.String(64), sa.ForeignKey("projects.name", ondelete="CASCADE")),
    sa.Column("shared", sa.Boolean, nullable=False),
    sa.Column("shared_host", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("default", sa.Boolean, nullable=False),
    sa.Column("deprecated", sa.Boolean, nullable=False),
)

certificates = sa.Table(
    "certificates",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column(
        "project",
        sa.String(64),
        sa.ForeignKey("projects.name", ondelete="CASCADE"),
        index=True,
    ),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("chain_pem", sa.Text, nullable=False),
    # The private key, sealed (AES-256-GCM, keyring.py) with the key named by key_kid.
    # key_kid NULL: a row from before migration 0005, still in plain text until the first
    # start of the new code seals it.
    sa.Column("key_sealed", sa.Text, nullable=False),
    sa.Column("key_kid", sa.String(32)),
    sa.Column("not_after", _TS),
    sa.Column("names", sa.JSON, nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False, server_default=""),
    sa.Column("created_at", _TS),
)

# Migration 0013: a project's own quotas (model/quota.py); NULL: the node's default.
quotas = sa.Table(
    "quotas",
    metadata,
    sa.Column(
        "project",
        sa.String(64),
        sa.ForeignKey("projects.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("proxies", sa.BigInteger),
    sa.Column("backends_per_proxy", sa.BigInteger),
    sa.Column("certificates", sa.BigInteger),
    sa.Column("cache_bytes", sa.BigInteger),
)

# One row (id = 1) holding the global revision; writers lock it to serialise.
revision = sa.Table(
    "revision",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger, nullable=False),
)

# The audit trail and change feed: one row per committed write. ``proxy_id`` names the
# proxy a change touched (also for backend changes) so the reconciler's delta query is
# one indexed range scan.
changes = sa.Table(
    "changes",
    metadata,
    sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("project", sa.String(64), index=True),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("object_id", sa.String(255), nullable=False),
    sa.Column("proxy_id", sa.String(32), index=True),
    sa.Column("before", sa.JSON),
    sa.Column("after", sa.JSON),
    sa.Column("at", _TS, nullable=False),
)

# Migration 0010. The further proxies one write touched, beyond ``changes.proxy_id``: a
# source's change of several proxies at once (an OpenShift application's hostnames and
# path prefixes) stays one transaction, and the reconciler still sees each proxy.
change_proxies = sa.Table(
    "change_proxies",
    metadata,
    sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("proxy_id", sa.String(32), primary_key=True),
)

# Migration 0010. What a source remembers of the objects it routes, by (source, key):
# an OpenShift application's aliases and endpoints, which its proxies alone cannot say
# (an application without endpoints has no proxy). Never holds a private key.
source_records = sa.Table(
    "source_records",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("value", sa.JSON, nullable=False),
)


# Each node's own report of itself (``portway node list``). Written outside the revision
# and the change log: it is state, not configuration, and a report every few seconds
# must never wake every node's reconciler.
nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("addresses", sa.JSON, nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("applied_revision", sa.BigInteger, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("started_at", _TS, nullable=False),
    sa.Column("last_seen", _TS, nullable=False),
    sa.Column("report_interval", sa.Float, nullable=False),
)


# The tier's TLS session-ticket keys (tls/tickets.py has the schedule). One row per
# slot: the primary key is the slot's start, so two nodes making the same slot's key at
# once end with one row (the second insert fails and that node reads the first's key).
# The secrets are sealed like certificates' keys; like node reports, rows are written
# outside the revision and the change log (they are state, not configuration).
tls_ticket_keys = sa.Table(
    "tls_ticket_keys",
    metadata,
    sa.Column("starts_at_ms", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("expires_at_ms", sa.BigInteger, nullable=False),
    sa.Column("name", sa.String(32), nullable=False, unique=True),  # hex, public
    sa.Column("secret_kid", sa.String(64), nullable=False),
    sa.Column("secret", sa.Text, nullable=False),  # sealed
    sa.Column("made_by", sa.String(64), nullable=False),
    sa.Column("made_at", _TS, nullable=False),
)
