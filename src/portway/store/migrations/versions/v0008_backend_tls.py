"""Backends may be spoken to over TLS (``Backend.tls``; docs/dataplane.md).

Every existing backend is plain HTTP, as before (``false``).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backends") as batch:
        batch.add_column(sa.Column("tls", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    # The older schema cannot say "TLS": such backends would be dialled in plain HTTP,
    # which is not what their owner asked for, so they go with the column.
    op.execute("DELETE FROM backends WHERE tls")
    with op.batch_alter_table("backends") as batch:
        batch.drop_column("tls")
