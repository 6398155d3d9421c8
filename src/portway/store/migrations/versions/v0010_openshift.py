"""The OpenShift source: a proxy may rewrite its path prefix, one write may touch several
proxies, and a source keeps a record of what it routes.

``proxies.rewrite`` is NULL for every proxy written before it, which reads as the
model's default (no rewrite). ``change_proxies`` names the proxies a write touched beyond
``changes.proxy_id``; ``source_records`` holds each OpenShift application's state (no
private key: certificates stay in ``certificates``, sealed).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proxies") as batch:
        batch.add_column(sa.Column("rewrite", sa.JSON))
    op.create_table(
        "change_proxies",
        sa.Column("revision", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("proxy_id", sa.String(32), primary_key=True),
    )
    op.create_table(
        "source_records",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("source_records")
    op.drop_table("change_proxies")
    with op.batch_alter_table("proxies") as batch:
        batch.drop_column("rewrite")
