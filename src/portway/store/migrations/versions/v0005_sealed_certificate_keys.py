"""Certificates' private keys are stored sealed, with the id of the key that sealed them.

The column is renamed so that older code, which would write plain text, fails instead.
Rows already there keep their plain text with ``key_kid`` NULL: the migration has no key
to seal them with; the first start of ``portway serve`` seals them (store/sealing.py).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificates") as batch:
        batch.alter_column("key_pem", new_column_name="key_sealed")
        batch.add_column(sa.Column("key_kid", sa.String(32)))


def downgrade() -> None:
    # Sealed values stay sealed: the code before 0005 cannot use them.
    with op.batch_alter_table("certificates") as batch:
        batch.drop_column("key_kid")
        batch.alter_column("key_sealed", new_column_name="key_pem")
