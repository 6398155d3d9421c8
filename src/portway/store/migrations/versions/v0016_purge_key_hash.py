"""Purge keys are kept only as salted hashes (model/purge_key.py).

``proxies.purge`` held ``{"allow_from": [...], "key": "<the secret>"}``; it becomes
``{"allow_from": [...], "key_hash": "sha256$<salt>$<digest>"}``, the key hashed as it was
(so a key set before keeps opening PURGE, whatever its length). The change log's copies
of proxies (``changes.before`` and ``after``) held the key too, readable by any reader
of the project: they get the same treatment. The key is gone after this: a downgrade
cannot bring it back and leaves every proxy without one (PURGE by address still works;
an owner sets the key again).

Revision ID: 0016
Revises: 0014
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from portway.model.purge_key import hash_key

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_proxies = sa.table("proxies", sa.column("id", sa.String), sa.column("purge", sa.JSON))
_changes = sa.table(
    "changes",
    sa.column("revision", sa.BigInteger),
    sa.column("before", sa.JSON),
    sa.column("after", sa.JSON),
)


def _hashed(purge: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in purge.items() if k != "key"}
    key = purge.get("key")
    out["key_hash"] = hash_key(key) if isinstance(key, str) and key else None
    return out


def _cleared(purge: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in purge.items() if k != "key_hash"}
    out["key"] = None
    return out


def _rewritten(value: Any, change: Callable[[dict[str, Any]], dict[str, Any]], old: str) -> Any:
    """``value`` with every ``purge`` object that has field ``old`` changed, however
    deep (a change log's copy of a proxy, or of several)."""
    if isinstance(value, list):
        return [_rewritten(v, change, old) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _rewritten(v, change, old) for k, v in value.items()}
    purge = out.get("purge")
    if isinstance(purge, dict) and old in purge:
        out["purge"] = change(purge)
    return out


def _migrate(change: Callable[[dict[str, Any]], dict[str, Any]], old: str) -> None:
    conn = op.get_bind()
    for proxy_id, purge in conn.execute(sa.select(_proxies.c.id, _proxies.c.purge)).all():
        if isinstance(purge, dict) and old in purge:
            update = sa.update(_proxies).where(_proxies.c.id == proxy_id)
            conn.execute(update.values(purge=change(purge)))
    # Only rows that can hold a proxy's purge settings are read (the log may be long).
    mention = sa.or_(
        sa.cast(_changes.c.before, sa.Text).like('%"purge"%'),
        sa.cast(_changes.c.after, sa.Text).like('%"purge"%'),
    )
    query = sa.select(_changes.c.revision, _changes.c.before, _changes.c.after).where(mention)
    for number, *sides in conn.execute(query).all():
        values = {}
        for name, value in zip(("before", "after"), sides, strict=True):
            rewritten = _rewritten(value, change, old)
            if rewritten != value:  # a side left alone keeps its SQL NULL
                values[name] = rewritten
        if values:
            update = sa.update(_changes).where(_changes.c.revision == number)
            conn.execute(update.values(**values))


def upgrade() -> None:
    _migrate(_hashed, "key")


def downgrade() -> None:
    _migrate(_cleared, "key_hash")
