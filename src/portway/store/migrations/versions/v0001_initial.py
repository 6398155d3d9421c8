"""Initial schema: projects, tokens, proxies, backends, zones, certificates, revision, changes.

Written out in full (not imported from schema.py) so that later edits to the live
schema cannot change what this migration did.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("project", sa.String(64), sa.ForeignKey("projects.name", ondelete="CASCADE")),
        sa.Column("description", sa.String(255), nullable=False, server_default=""),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("expires_at", _TS),
    )
    op.create_index("ix_tokens_project", "tokens", ["project"])
    op.create_table(
        "proxies",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "project",
            sa.String(64),
            sa.ForeignKey("projects.name", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("path_prefix", sa.String(1024), nullable=False),
        sa.Column("backend_port", sa.Integer, nullable=False),
        sa.Column("algorithm", sa.String(32), nullable=False),
        sa.Column("session_persistence", sa.JSON),
        sa.Column("health_check", sa.JSON),
        sa.Column("tls", sa.JSON, nullable=False),
        sa.Column("cache", sa.JSON, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("hostname", "path_prefix", name="uq_proxies_hostname_path_prefix"),
    )
    op.create_index("ix_proxies_project", "proxies", ["project"])
    op.create_table(
        "backends",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "proxy_id",
            sa.String(32),
            sa.ForeignKey("proxies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("address", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer, nullable=False),
        sa.Column("weight", sa.Integer, nullable=False),
        sa.Column("backup", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.UniqueConstraint("proxy_id", "address", "port", name="uq_backends_proxy_address_port"),
    )
    op.create_index("ix_backends_proxy_id", "backends", ["proxy_id"])
    op.create_table(
        "zones",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("project", sa.String(64), sa.ForeignKey("projects.name", ondelete="CASCADE")),
        sa.Column("shared", sa.Boolean, nullable=False),
        sa.Column("default", sa.Boolean, nullable=False),
        sa.Column("deprecated", sa.Boolean, nullable=False),
    )
    op.create_table(
        "certificates",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("project", sa.String(64), sa.ForeignKey("projects.name", ondelete="CASCADE")),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("chain_pem", sa.Text, nullable=False),
        sa.Column("key_pem", sa.Text, nullable=False),
        sa.Column("not_after", _TS),
        sa.Column("names", sa.JSON, nullable=False),
    )
    op.create_index("ix_certificates_project", "certificates", ["project"])
    revision_table = op.create_table(
        "revision",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(revision_table, [{"id": 1, "value": 0}])
    op.create_table(
        "changes",
        sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("project", sa.String(64)),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("object_id", sa.String(255), nullable=False),
        sa.Column("proxy_id", sa.String(32)),
        sa.Column("before", sa.JSON),
        sa.Column("after", sa.JSON),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_changes_project", "changes", ["project"])
    op.create_index("ix_changes_proxy_id", "changes", ["proxy_id"])


def downgrade() -> None:
    for table in (
        "changes",
        "revision",
        "certificates",
        "zones",
        "backends",
        "proxies",
        "tokens",
        "projects",
    ):
        op.drop_table(table)
