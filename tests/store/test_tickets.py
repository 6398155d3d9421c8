"""The tier's TLS ticket keys in the store, on SQLite and PostgreSQL: one key per slot
however many nodes make it at once, expired keys dropped, secrets sealed."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from portway.store import Store, open_store
from portway.store.keyring import Keyring, SecretKey
from portway.store.schema import tls_ticket_keys
from portway.store.tickets import keep_ticket_keys, reseal_ticket_keys, ticket_key_kids
from portway.tls.tickets import Schedule, TicketKeys

SCHEDULE = Schedule(interval=60.0, accept_intervals=2)
T0 = 1_800_000_000.0  # a slot boundary (divisible by 60)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = open_store(store_url, Keyring.generate())
    yield s
    s.close()


def _rows(store: Store) -> list[sa.Row[tuple[object, ...]]]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.select(tls_ticket_keys).order_by("starts_at_ms")))


def test_the_first_node_makes_the_current_and_the_next_key(store: Store) -> None:
    keys = keep_ticket_keys(store, SCHEDULE, T0 + 10, "n1")
    current = keys.encrypting(T0 + 10)
    assert current is not None and current.starts_at == T0
    assert keys.encrypting(T0 + 60) is not current  # the next one is there a slot ahead
    assert [r.starts_at_ms for r in _rows(store)] == [T0 * 1000, (T0 + 60) * 1000]
    again = keep_ticket_keys(store, SCHEDULE, T0 + 20, "n2")
    assert again.names() == keys.names()  # a second node reads, makes nothing


def test_nodes_rotating_at_once_end_with_one_key_per_slot(store: Store) -> None:
    for slot in range(4):
        now = T0 + 60 * slot + 1
        barrier = threading.Barrier(4)
        seen: list[TicketKeys] = []

        threads = [
            threading.Thread(target=_rotate, args=(store, now, f"n{i}", barrier, seen))
            for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        starts = [r.starts_at_ms for r in _rows(store)]
        assert len(starts) == len(set(starts))
        assert len({k.names() for k in seen}) == 1, "every node ended with the same keys"
        current = {k.encrypting(now).name for k in seen}  # type: ignore[union-attr]
        assert len(current) == 1


def _rotate(
    store: Store, now: float, node: str, barrier: threading.Barrier, seen: list[TicketKeys]
) -> None:
    barrier.wait()  # every node at the same instant
    seen.append(keep_ticket_keys(store, SCHEDULE, now, node))


def test_a_key_is_dropped_once_past_its_acceptance_window(store: Store) -> None:
    first = keep_ticket_keys(store, SCHEDULE, T0 + 1, "n1").encrypting(T0 + 1)
    assert first is not None
    assert first.expires_at == T0 + 3 * 60  # its slot and two more
    later = keep_ticket_keys(store, SCHEDULE, T0 + 2 * 60 + 1, "n1")
    assert later.decrypting(first.name, T0 + 2 * 60 + 1) == first
    assert later.encrypting(T0 + 2 * 60 + 1) != first
    gone = keep_ticket_keys(store, SCHEDULE, T0 + 3 * 60, "n1")
    assert first.name not in gone.names()
    assert first.name.hex() not in {r.name for r in _rows(store)}


def test_secrets_are_sealed_and_a_node_with_another_key_file_overwrites_nothing(
    store: Store, store_url: str
) -> None:
    key = keep_ticket_keys(store, SCHEDULE, T0 + 1, "n1").encrypting(T0 + 1)
    assert key is not None
    stored = " ".join(str(v) for r in _rows(store) for v in r)
    assert key.aes_key.hex() not in stored and key.hmac_key.hex() not in stored
    assert "TicketKey" in repr(key) and key.aes_key.hex() not in repr(key)
    other = open_store(store_url, Keyring.generate())  # a node with another secret key
    try:
        assert not len(keep_ticket_keys(other, SCHEDULE, T0 + 1, "n2"))
    finally:
        other.close()
    again = keep_ticket_keys(store, SCHEDULE, T0 + 1, "n1")
    assert again.encrypting(T0 + 1) == key  # the tier's key is still there


def test_a_rotation_of_the_secret_key_seals_the_ticket_keys_again(store_url: str) -> None:
    """``portway keys rotate`` reseals ticket keys too, so ``keys prune`` can drop the
    secret key they were sealed with (it keeps any key a row still uses)."""
    old, new = SecretKey.generate(), SecretKey.generate()
    before = open_store(store_url, Keyring([old]))
    try:
        keys = keep_ticket_keys(before, SCHEDULE, T0 + 10, "n1")
    finally:
        before.close()
    after = open_store(store_url, Keyring([new, old]))  # rotated: new is current
    try:
        assert reseal_ticket_keys(after) == 2
        assert {r.secret_kid for r in _rows(after)} == {new.kid}
        assert ticket_key_kids(after) == {new.kid}
        assert reseal_ticket_keys(after) == 0  # nothing left to reseal
    finally:
        after.close()
    only_new = open_store(store_url, Keyring([new]))  # the old key pruned from the file
    try:
        reread = keep_ticket_keys(only_new, SCHEDULE, T0 + 20, "n2")
        assert reread.names() == keys.names()
    finally:
        only_new.close()
