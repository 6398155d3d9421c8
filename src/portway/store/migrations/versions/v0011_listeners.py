"""Listeners per port (issue 13): a proxy may claim a port of its own and a protocol.

``proxies.listen_port`` is 0 for every proxy on the shared listeners (all rows before
this migration) and ``protocol`` "http", which is what they were. The unique constraint
takes the port in, so one hostname may have a proxy on the shared listeners and others
on ports of their own. ``proxies.stream`` is NULL (the model's defaults) but on ``tcp``
and ``tls-passthrough`` proxies.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("proxies") as batch:
        batch.add_column(sa.Column("listen_port", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("protocol", sa.String(32), nullable=False, server_default="http")
        )
        batch.add_column(sa.Column("stream", sa.JSON))
        batch.drop_constraint("uq_proxies_hostname_path_prefix", type_="unique")
        batch.create_unique_constraint(
            "uq_proxies_hostname_path_prefix_port", ["hostname", "path_prefix", "listen_port"]
        )


def downgrade() -> None:
    # The older schema has one proxy per hostname and prefix: those on ports of their
    # own cannot be kept (their backends go with them, by the foreign key's cascade).
    op.execute(
        "DELETE FROM backends WHERE proxy_id IN (SELECT id FROM proxies WHERE listen_port <> 0)"
    )
    op.execute("DELETE FROM proxies WHERE listen_port <> 0")
    with op.batch_alter_table("proxies") as batch:
        batch.drop_constraint("uq_proxies_hostname_path_prefix_port", type_="unique")
        batch.create_unique_constraint(
            "uq_proxies_hostname_path_prefix", ["hostname", "path_prefix"]
        )
        batch.drop_column("stream")
        batch.drop_column("protocol")
        batch.drop_column("listen_port")
