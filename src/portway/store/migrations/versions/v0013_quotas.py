"""Per-project quotas (issue 12): one row per project that has quotas of its own.

A NULL column, like a project without a row, takes the node-wide default
(``--quota-*``); -1 is unlimited.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quotas",
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


def downgrade() -> None:
    op.drop_table("quotas")
