"""Writing proxies rows with SQL, bypassing the service: how rows stored by a Portway
without today's rules look to the reconciler and the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from portway.store import Store
from portway.store.schema import changes, proxies, revision


def write_by_hand(store: Store, proxy_id: str, project: str = "alpha", **columns: Any) -> int:
    """Change columns of a proxies row as one revision with one change-log row, as every
    Portway write is. Returns the new revision."""
    with store.engine.begin() as conn:
        new = int(conn.execute(sa.select(revision.c.value).where(revision.c.id == 1)).scalar_one())
        new += 1
        conn.execute(sa.update(revision).where(revision.c.id == 1).values(value=new))
        conn.execute(
            sa.update(proxies).where(proxies.c.id == proxy_id).values(revision=new, **columns)
        )
        conn.execute(
            sa.insert(changes).values(
                revision=new,
                project=project,
                actor="by-hand",
                kind="proxy",
                action="update",
                object_id=proxy_id,
                proxy_id=proxy_id,
                at=datetime.now(UTC),
            )
        )
    return new
