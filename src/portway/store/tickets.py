"""The tier's TLS session-ticket keys in the store: made, read and dropped by any node.

Whichever node first sees that a slot's key is missing makes it; the slot's start is the
row's primary key, so when two nodes make the same key at once the second insert fails
and both read the first one's key: one key per slot, whatever the race. Expired keys are
deleted by whichever node sees them. The secrets are sealed with the store's secret
keys (``--secret-key-file``) under the context ``tls-ticket-key:<name>``. A row this
node cannot open (its key file is not the tier's) is left alone for the nodes that can,
and this node goes without that key; ``portway keys prune`` keeps every secret key a
ticket key row still uses (:func:`ticket_key_kids`), so on a tier that shares its key
file that does not happen.

Writes here are outside the revision and the change log, like node reports: rotation
must wake no reconciler.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from portway.errors import StoreError
from portway.store.keyring import Sealed
from portway.store.schema import tls_ticket_keys as table
from portway.store.store import Store, translate_errors
from portway.tls.tickets import Schedule, TicketKey, TicketKeys

log = logging.getLogger("portway.tls")
_REPORTED_LIMIT = 1000
_reported: set[str] = set()  # rows that did not open, logged once each


def keep_ticket_keys(store: Store, schedule: Schedule, now: float, node: str) -> TicketKeys:
    """Make the keys ``schedule`` wants at ``now`` that are missing, drop expired ones,
    and return every key that still decrypts."""
    keys = _load(store)
    have = {_ms(k.starts_at) for k in keys}
    missing = [s for s in schedule.wanted(now) if _ms(s) not in have]
    for starts in missing:
        _make(store, TicketKey.generate(starts, schedule.expiry(starts)), node)
    expired = [k for k in keys if k.expires_at <= now]
    if expired:
        _delete(store, expired)
    if missing or expired:
        keys = _load(store)
    return TicketKeys(k for k in keys if k.expires_at > now)


def ticket_key_kids(store: Store) -> set[str]:
    """The secret keys that ticket key rows are sealed with."""
    with translate_errors(), store.engine.connect() as conn:
        return set(conn.execute(sa.select(table.c.secret_kid).distinct()).scalars())


def reseal_ticket_keys(store: Store) -> int:
    """Seal every ticket key with the store's current secret key (``portway keys
    rotate``), so that the keys it replaced can be pruned; returns how many changed. A
    row this node cannot open is left as it is (and keeps its secret key from pruning)."""
    current = store.secrets.kids()[:1]
    with translate_errors(), store.engine.connect() as conn:
        rows = conn.execute(sa.select(table)).all()
    changed = 0
    for row in rows:
        if (row.secret_kid,) == current:
            continue
        context = _context(bytes.fromhex(row.name))
        try:
            secret = store.secrets.open(Sealed(row.secret_kid, row.secret), context)
        except StoreError as exc:
            _report_broken(row.name, exc)
            continue
        sealed = store.secrets.seal(secret, context)
        with (
            translate_errors(),
            store.engine.connect().execution_options(portway_write=True) as conn,
            conn.begin(),
        ):
            key = table.c.starts_at_ms == row.starts_at_ms
            values = {"secret_kid": sealed.kid, "secret": sealed.text}
            conn.execute(sa.update(table).where(key).values(values))
        changed += 1
    return changed


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _context(name: bytes) -> str:
    return f"tls-ticket-key:{name.hex()}"


def _make(store: Store, key: TicketKey, node: str) -> None:
    sealed = store.secrets.seal(key.secret().hex(), _context(key.name))
    row = {
        "starts_at_ms": _ms(key.starts_at),
        "expires_at_ms": _ms(key.expires_at),
        "name": key.name.hex(),
        "secret_kid": sealed.kid,
        "secret": sealed.text,
        "made_by": node,
        "made_at": datetime.now(UTC),
    }
    with translate_errors():
        try:
            with (
                store.engine.connect().execution_options(portway_write=True) as conn,
                conn.begin(),
            ):
                conn.execute(sa.insert(table).values(row))
        except sa_exc.IntegrityError:
            return  # another node made this slot's key first: theirs is the one
    log.info("made TLS ticket key %s starting at %.0f", key.name.hex()[:8], key.starts_at)


def _delete(store: Store, keys: list[TicketKey]) -> None:
    starts = [_ms(k.starts_at) for k in keys]
    with (
        translate_errors(),
        store.engine.connect().execution_options(portway_write=True) as conn,
        conn.begin(),
    ):
        conn.execute(sa.delete(table).where(table.c.starts_at_ms.in_(starts)))


def _load(store: Store) -> list[TicketKey]:
    with translate_errors(), store.engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.starts_at_ms)).all()
    keys = []
    for row in rows:
        name = bytes.fromhex(row.name)
        try:
            secret = store.secrets.open(Sealed(row.secret_kid, row.secret), _context(name))
        except StoreError as exc:
            _report_broken(row.name, exc)
            continue
        keys.append(
            TicketKey.from_secret(
                name, bytes.fromhex(secret), row.starts_at_ms / 1000, row.expires_at_ms / 1000
            )
        )
    return keys


def _report_broken(name: str, exc: StoreError) -> None:
    if name in _reported:
        return
    if len(_reported) >= _REPORTED_LIMIT:
        _reported.clear()
    _reported.add(name)
    log.warning(
        "TLS ticket key %s does not open (%s): this node goes without it; give it the "
        "secret key file the other nodes use",
        name[:8],
        exc,
    )
