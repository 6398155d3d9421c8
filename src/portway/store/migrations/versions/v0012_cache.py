"""Per-proxy purge settings: who may send the data plane's PURGE method.

``proxies.purge`` is NULL for every proxy written before it, which reads as the model's
default (no address, no key: PURGE is refused). The cache's own new fields (max_bytes,
default_ttl, key) live in the existing ``cache`` JSON column, whose old rows
(``{"enabled": false}``) read as the model's defaults for the missing fields.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proxies") as batch:
        batch.add_column(sa.Column("purge", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("proxies") as batch:
        batch.drop_column("purge")
