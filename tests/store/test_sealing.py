"""Certificate keys in the store: sealed on write, opened only for the data plane, sealed
on first start when an older version left them plain, re-sealed by a rotation. Runs on
SQLite and PostgreSQL through the ``store_url`` fixture."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import trustme

from portway.errors import ConfigError, StoreError
from portway.model import Certificate, Project
from portway.store import Store, open_store
from portway.store.keyfile import FileKeyring, create_key_file, read_keys, write_keys
from portway.store.keyring import Keyring, Sealed, SecretKey
from portway.store.schema import certificates, changes
from portway.store.sealing import add_key, prepare_keys, prune, rotate, usage

LEAF = trustme.CA().issue_cert("a.alpha.test")
KEY = LEAF.private_key_pem.bytes().decode()
KEY_BODY = KEY.splitlines()[1]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "secret.key"
    path.parent.mkdir()
    create_key_file(path)
    return path


@pytest.fixture
def store(store_url: str, key_file: Path) -> Iterator[Store]:
    opened = open_store(store_url, FileKeyring(key_file))
    with opened.transaction("test") as tx:
        tx.insert_project(Project(name="alpha"))
        tx.record(kind="project", action="create", object_id="alpha", project="alpha")
    yield opened
    opened.close()


def _add(store: Store, cert_id: str) -> None:
    cert = Certificate(id=cert_id, project="alpha", name=cert_id, chain_pem="C", key_pem=KEY)
    with store.transaction("test") as tx:
        tx.insert_certificate(cert)
        tx.record(
            kind="certificate",
            action="create",
            object_id=cert_id,
            project="alpha",
            after=cert.public(),
        )


def _dump(store: Store) -> str:
    """Every row of the tables a key could leak into, as text (a pg_dump of them)."""
    with store.engine.connect() as conn:
        return repr([conn.execute(sa.select(t)).all() for t in (certificates, changes)])


def _kids(store: Store) -> set[str | None]:
    with store.engine.connect() as conn:
        return set(conn.execute(sa.select(certificates.c.key_kid)).scalars())


def test_key_is_stored_sealed_and_opens_only_for_the_data_plane(store: Store) -> None:
    _add(store, "c1")
    dump = _dump(store)
    assert "PRIVATE KEY" not in dump and KEY_BODY not in dump
    assert _kids(store) == {store.secrets.kids()[0]}
    [loaded] = store.load_certificates(["c1"])
    assert loaded.key_pem == KEY
    shown = store.read(lambda r: (r.get_certificate("c1"), r.list_certificates("alpha")))
    assert shown[0] is not None and shown[0].key_pem == ""
    assert [c.key_pem for c in shown[1]] == [""]


def test_key_moved_to_another_row_is_left_out_and_logged(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    _add(store, "c1")
    _add(store, "c2")
    c = certificates.c
    with store.engine.begin() as conn:
        one = conn.execute(sa.select(c.key_sealed, c.key_kid).where(c.id == "c1")).one()
        conn.execute(
            sa.update(certificates)
            .where(c.id == "c2")
            .values(key_sealed=one.key_sealed, key_kid=one.key_kid)
        )
    with caplog.at_level(logging.ERROR):
        loaded = store.load_certificates(["c1", "c2"])
    assert [x.id for x in loaded] == ["c1"]
    assert "certificate c2 left out" in caplog.text


def test_store_opened_without_secrets_refuses_to_store_a_key(store_url: str) -> None:
    bare = open_store(store_url)
    try:
        with pytest.raises(StoreError, match="without a secret key"):
            _add_with_project(bare)
    finally:
        bare.close()


def _add_with_project(store: Store) -> None:
    with store.transaction("test") as tx:
        tx.insert_project(Project(name="alpha"))
        tx.insert_certificate(
            Certificate(id="c1", project="alpha", name="c", chain_pem="C", key_pem=KEY)
        )


def _plain_row(store: Store, cert_id: str) -> None:
    """A row as the code before migration 0005 wrote it: the key in plain text."""
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(certificates).values(
                id=cert_id,
                project="alpha",
                name="old",
                chain_pem="C",
                key_sealed=KEY,
                key_kid=None,
                names=[],
                fingerprint="",
            )
        )


def test_first_start_seals_keys_left_in_plain_text(store: Store) -> None:
    _plain_row(store, "old")
    assert "PRIVATE KEY" in _dump(store)
    before = store.current_revision()
    assert isinstance(store.secrets, FileKeyring)
    prepare_keys(store, store.secrets, may_create=False)
    assert "PRIVATE KEY" not in _dump(store) and KEY_BODY not in _dump(store)
    assert _kids(store) == {store.secrets.kids()[0]}
    assert store.current_revision() == before + 1
    [change] = store.read(lambda r: r.list_changes(project=None, limit=1))
    assert (change.kind, change.action) == ("secret_key", "seal")
    assert change.after == {"kid": store.secrets.kids()[0], "certificates": 1}
    assert store.load_certificates(["old"])[0].key_pem == KEY
    prepare_keys(store, store.secrets, may_create=False)  # nothing left to seal
    assert store.current_revision() == before + 1


def test_missing_key_file_is_made_only_when_allowed_and_no_key_needs_another(
    store_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "new" / "secret.key"
    path.parent.mkdir()
    keys = FileKeyring(path)
    opened = open_store(store_url, keys)
    try:
        with pytest.raises(ConfigError, match="portway keys add --secret-key-file"):
            prepare_keys(opened, keys, may_create=False)
        assert not path.exists()
        prepare_keys(opened, keys, may_create=True)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(read_keys(path)) == 1
        with opened.transaction("test") as tx:
            tx.insert_project(Project(name="alpha"))
            tx.record(kind="project", action="create", object_id="alpha", project="alpha")
        _add(opened, "c1")
        path.unlink()  # lost: a new key would leave c1 unreadable for good
        with pytest.raises(ConfigError, match="is missing, but the store holds keys sealed"):
            prepare_keys(opened, keys, may_create=True)
        assert not path.exists()
        write_keys(path, [SecretKey.generate()])  # some other node's key
        with pytest.raises(ConfigError, match="lacks: give this node the key file"):
            prepare_keys(opened, keys, may_create=True)
    finally:
        opened.close()


def test_rotation_reseals_every_key_in_one_write_and_prune_drops_the_old_key(
    store: Store, key_file: Path
) -> None:
    _add(store, "c1")
    _add(store, "c2")
    [old] = read_keys(key_file)
    before = store.current_revision()
    new, count = rotate(store, key_file)
    assert count == 2 and store.current_revision() == before + 1
    assert read_keys(key_file) == [new, old]
    assert _kids(store) == {new.kid}
    only_old = Keyring([old])
    with pytest.raises(StoreError):
        only_old.open(_sealed(store, "c1"), "certificate:c1")
    assert [c.key_pem for c in store.load_certificates(["c1", "c2"])] == [KEY, KEY]
    assert {u.kid: (u.current, u.certificates) for u in usage(store, key_file)} == {
        new.kid: (True, 2),
        old.kid: (False, 0),
    }
    assert prune(store, key_file) == [old.kid]
    assert read_keys(key_file) == [new]
    assert prune(store, key_file) == []
    assert [c.key_pem for c in store.load_certificates(["c1", "c2"])] == [KEY, KEY]


def test_rotation_to_a_key_added_beforehand(store: Store, key_file: Path) -> None:
    _add(store, "c1")
    [old] = read_keys(key_file)
    added = add_key(key_file)
    assert read_keys(key_file) == [old, added]  # it opens, it does not seal yet
    _add(store, "c2")
    assert _kids(store) == {old.kid}
    chosen, count = rotate(store, key_file, to=added.kid)
    assert chosen == added and count == 2 and _kids(store) == {added.kid}
    with pytest.raises(ConfigError, match="not in"):
        rotate(store, key_file, to="0" * 16)


def test_rotation_that_meets_a_broken_row_changes_no_row(store: Store, key_file: Path) -> None:
    _add(store, "c1")
    _add(store, "c2")
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(certificates).where(certificates.c.id == "c2").values(key_sealed="AAAA")
        )
    [old] = read_keys(key_file)
    before = store.current_revision()
    with pytest.raises(StoreError, match="certificate:c2"):
        rotate(store, key_file)
    assert store.current_revision() == before
    assert _kids(store) == {old.kid}  # c1 was not re-sealed either
    assert read_keys(key_file)[1:] == [old]  # the new key stays: only prune drops keys
    assert store.load_certificates(["c1"])[0].key_pem == KEY


def _sealed(store: Store, cert_id: str) -> Sealed:
    c = certificates.c
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(c.key_sealed, c.key_kid).where(c.id == cert_id)).one()
    return Sealed(kid=row.key_kid, text=row.key_sealed)


def test_sqlite_store_opened_directly_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        opened = open_store(f"sqlite:///{tmp_path}/db/portway.db", Keyring.generate())
        with opened.transaction("test") as tx:
            tx.insert_project(Project(name="alpha"))
            tx.record(kind="project", action="create", object_id="alpha", project="alpha")
        files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "db").iterdir()}
        opened.close()
    finally:
        os.umask(old)
    assert files == {"portway.db": 0o600, "portway.db-wal": 0o600, "portway.db-shm": 0o600}
    assert stat.S_IMODE((tmp_path / "db").stat().st_mode) == 0o700


def test_sqlite_files_left_open_by_an_older_version_are_tightened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/portway.db"
    open_store(url).close()
    (tmp_path / "portway.db").chmod(0o644)
    with caplog.at_level(logging.WARNING):
        open_store(url).close()
    assert stat.S_IMODE((tmp_path / "portway.db").stat().st_mode) == 0o600
    assert "portway.db (0644)" in caplog.text


def test_rotate_reseals_ticket_keys_and_prune_keeps_a_key_one_is_still_sealed_with(
    store: Store, key_file: Path
) -> None:
    from portway.store.keyring import Keyring
    from portway.store.tickets import keep_ticket_keys
    from portway.tls.tickets import Schedule

    schedule = Schedule(interval=60.0)
    [old] = read_keys(key_file)
    keep_ticket_keys(store, schedule, 1_800_000_001.0, "n1")  # sealed with the old key
    rotate(store, key_file)  # seals them again with the new one
    assert prune(store, key_file) == [old.kid]
    # A node that has not re-read the key file seals the next slot's key with the old
    # one: prune keeps that key until no ticket key row uses it.
    write_keys(key_file, [*read_keys(key_file), old])
    stale = Store(store.engine, Keyring([old]))
    keep_ticket_keys(stale, schedule, 1_800_000_000.0 + 2 * 60 + 1, "stale")
    assert prune(store, key_file) == []
    assert old in read_keys(key_file)
    later = 1_800_000_000.0 + 10 * 60  # the old ticket keys expired and were dropped
    keep_ticket_keys(_reread(store, key_file), schedule, later, "n1")
    assert prune(store, key_file) == [old.kid]


def _reread(store: Store, key_file: Path) -> Store:
    """The store as a node that re-read its key file after the rotation."""
    return Store(store.engine, FileKeyring(key_file))
