"""Certificates keep their leaf fingerprint and creation time (shown by the API).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("created_at")
        batch.drop_column("fingerprint")
