"""Per-proxy timeouts, limits and the consistent-hash key.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: rows written before this migration read back as the model defaults.
    with op.batch_alter_table("proxies") as batch:
        batch.add_column(sa.Column("timeouts", sa.JSON))
        batch.add_column(sa.Column("limits", sa.JSON))
        batch.add_column(sa.Column("hash_key", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("proxies") as batch:
        batch.drop_column("hash_key")
        batch.drop_column("limits")
        batch.drop_column("timeouts")
