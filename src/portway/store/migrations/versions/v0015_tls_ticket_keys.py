"""The tier's TLS session-ticket keys: one sealed key per rotation slot.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tls_ticket_keys",
        sa.Column("starts_at_ms", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=False),
        sa.Column("name", sa.String(32), nullable=False, unique=True),
        sa.Column("secret_kid", sa.String(64), nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("made_by", sa.String(64), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tls_ticket_keys")
