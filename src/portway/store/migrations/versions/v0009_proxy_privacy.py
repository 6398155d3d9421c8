"""Per-proxy privacy: whether the client's address is forwarded to the backends.

``proxies.privacy`` is NULL for every proxy written before it, which reads as the
model's default (``forwarded_for: inherit``, the node's ``--forwarded-for``).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proxies") as batch:
        batch.add_column(sa.Column("privacy", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("proxies") as batch:
        batch.drop_column("privacy")
