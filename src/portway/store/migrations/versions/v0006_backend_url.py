"""Backends keep the URL the dynamicproxy API got for them, to give it back unchanged.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backends") as batch:
        batch.add_column(sa.Column("url", sa.String(512)))


def downgrade() -> None:
    with op.batch_alter_table("backends") as batch:
        batch.drop_column("url")
