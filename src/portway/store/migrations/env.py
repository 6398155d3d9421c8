"""Alembic environment: always run online, on the connection ``open_store`` hands over.

The store passes its own connection in ``config.attributes["connection"]`` so that
migrations run inside the process (no alembic.ini, no URL in a file).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from portway.store.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("portway migrations run only through portway.store.open_store")
_run(connection)
