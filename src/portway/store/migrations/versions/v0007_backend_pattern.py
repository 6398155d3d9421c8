"""Toolforge tools: a backend may carry a route pattern, a proxy may be a tool's proxy.

``backends.pattern`` is ``""`` for every backend that has none, and the unique
constraint takes it in, so one tool may send two patterns to the same destination while
address:port stays unique among ordinary backends. ``proxies.toolforge`` is NULL for
every proxy but a tool's (docs/toolforge.md).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("backends") as batch:
        batch.add_column(sa.Column("pattern", sa.String(1024), nullable=False, server_default=""))
        batch.drop_constraint("uq_backends_proxy_address_port", type_="unique")
        batch.create_unique_constraint(
            "uq_backends_proxy_address_port_pattern", ["proxy_id", "address", "port", "pattern"]
        )
    with op.batch_alter_table("proxies") as batch:
        batch.add_column(sa.Column("toolforge", sa.JSON))


def downgrade() -> None:
    # Tool routes cannot be kept by the older schema: their backends go with the column.
    op.execute("DELETE FROM backends WHERE pattern <> ''")
    with op.batch_alter_table("proxies") as batch:
        batch.drop_column("toolforge")
    with op.batch_alter_table("backends") as batch:
        batch.drop_constraint("uq_backends_proxy_address_port_pattern", type_="unique")
        batch.create_unique_constraint(
            "uq_backends_proxy_address_port", ["proxy_id", "address", "port"]
        )
        batch.drop_column("pattern")
