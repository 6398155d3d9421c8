"""Issue 7, defect 8: tenants' private keys at rest.

A real ``portway serve`` (tests/integration/harness.py) keeps its data dir 0700 and every
file in it 0600, stores uploaded private keys only encrypted (AES-256-GCM, the key in a
0600 file outside the database), encrypts the plain-text keys an older version left in
the database on its first start, and rotates the secret key without losing a
certificate. Each test looks at what an attacker would get (the database file bytes, a
``pg_dump``) and checks that the certificate is still served over TLS.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trustme
from alembic import command
from alembic.config import Config
from cryptography.hazmat.primitives import serialization

from tests.conftest import _fresh_pg_database
from tests.integration.harness import (
    VENV_BIN,
    Backend,
    Portway,
    create_project_and_proxy,
    start_backend,
)
from tests.pg import pg_bin

# What the old code (schema 0003) left in the database: the key in plain text.
OLD_SCHEMA = "0003"


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    """Run ``portway serve`` under the common 022 umask: the modes must not depend on it."""
    old = os.umask(0o022)
    yield
    os.umask(old)


class Leaf:
    """A certificate from a throwaway CA, and the forms of its key to look for."""

    def __init__(self, ca: trustme.CA, *names: str) -> None:
        issued = ca.issue_cert(*names)
        self.chain = "".join(b.bytes().decode() for b in issued.cert_chain_pems)
        self.key = issued.private_key_pem.bytes().decode()
        der = serialization.load_pem_private_key(self.key.encode(), None).private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        lines = [ln for ln in self.key.splitlines() if ln and not ln.startswith("-----")]
        body = "".join(lines)
        # Any 24 characters of the base64 body (on one line or with the line breaks
        # gone), or 24 bytes of the DER, would give the key away.
        self.needles = {body[i : i + 24].encode() for i in range(0, len(body) - 24, 12)}
        self.needles |= {der[i : i + 24] for i in range(0, len(der) - 24, 12)}

    def body(self, name: str) -> dict[str, Any]:
        return {"certificate": {"name": name, "chain": self.chain, "key": self.key}}

    def assert_absent(self, blob: bytes, where: str) -> None:
        assert b"PRIVATE KEY" not in blob, f"a PEM private key in {where}"
        found = [n for n in self.needles if n in blob]
        assert not found, f"{len(found)} pieces of the private key in {where}"


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def origin() -> Iterator[Backend]:
    backend = start_backend("origin")
    yield backend
    backend.stop()


def _refused(pw: Portway) -> str:
    """Start ``pw``, which must refuse to start with a one-line complaint; that line."""
    try:
        with pytest.raises(RuntimeError) as failed:
            pw.start()
    finally:
        if pw.proc is not None and pw.proc.poll() is None:
            pw.stop()
    output = str(failed.value).removeprefix("portway serve exited: ").strip()
    assert output.startswith("portway: ") and "\n" not in output, output
    return output


def _client_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def _served_names(pw: Portway, sni: str, ctx: ssl.SSLContext, want: set[str]) -> bytes:
    """Handshake with ``sni`` until the certificate for ``want`` is served; the response."""
    import socket

    deadline = time.monotonic() + 10
    while True:
        raw = socket.create_connection(("127.0.0.1", pw.https_port), timeout=5)
        try:
            with ctx.wrap_socket(raw, server_hostname=sni) as tls:
                cert = tls.getpeercert()
                assert cert is not None
                names = {v for k, v in cert["subjectAltName"] if k == "DNS"}
                tls.sendall(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while part := tls.recv(65536):
                    data += part
        except ssl.SSLCertVerificationError:
            names, data = set(), b""  # still the default certificate (not our CA)
        if names == want:
            return data
        assert time.monotonic() < deadline, f"{sni}: still served {names or 'the default'}"
        time.sleep(0.05)


def _upload(pw: Portway, leaf: Leaf, name: str, project: str = "alpha") -> str:
    r = pw.api("POST", "/v1/projects", json={"project": {"name": project}})
    assert r.status_code in (201, 409), r.text
    r = pw.api("POST", f"/v1/{project}/certificates", json=leaf.body(name))
    assert r.status_code == 201, r.text
    assert "PRIVATE KEY" not in r.text
    return str(r.json()["certificate"]["id"])


def _attach(pw: Portway, hostname: str, cert_id: str, port: int) -> None:
    create_project_and_proxy(pw, "alpha", hostname, [port], tls={"certificate": cert_id})


def _db_bytes(data_dir: Path) -> bytes:
    """What a copy of the SQLite store holds: the database and its WAL (and shm)."""
    return b"".join(
        (data_dir / name).read_bytes()
        for name in ("portway.db", "portway.db-wal", "portway.db-shm")
        if (data_dir / name).exists()
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _key_rows(data_dir: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{data_dir / 'portway.db'}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT id, key_kid, key_sealed FROM certificates").fetchall()


def _portway_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "portway"), *args], capture_output=True, text=True, timeout=60
    )


# -- permissions ----------------------------------------------------------------------


def test_serve_keeps_its_data_dir_0700_and_every_file_in_it_0600(
    tmp_path: Path, ca: trustme.CA, origin: Backend
) -> None:
    pw = Portway(tmp_path / "data")
    pw.start()
    try:
        leaf = Leaf(ca, "shop.alpha.test")
        _attach(pw, "shop.alpha.test", _upload(pw, leaf, "shop"), origin.port)
        _served_names(pw, "shop.alpha.test", _client_context(ca), {"shop.alpha.test"})
        assert oct(_mode(pw.data_dir)) == oct(0o700)
        modes = {p.name: oct(_mode(p)) for p in pw.data_dir.iterdir()}
        assert set(modes.values()) == {oct(0o600)}, modes
        assert {"portway.db", "portway.db-wal", "portway.db-shm", "secret.key"} <= set(modes)
        assert {"ca.pem", "ca-key.pem", "default.pem", "default-key.pem"} <= set(modes)
    finally:
        pw.stop()


def test_serve_tightens_an_open_data_dir_and_its_files_and_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    first = Portway(data)
    first.start()
    first.stop()
    # As an older version (or a careless copy) left them: everything readable by all.
    data.chmod(0o755)
    for path in data.iterdir():
        if path.name != "secret.key":
            path.chmod(0o644)
    pw = Portway(data)
    pw.start()
    pw.stop()
    assert _mode(data) == 0o700
    assert {p.name: _mode(p) for p in data.iterdir()} == {p.name: 0o600 for p in data.iterdir()}
    assert "0700" in pw.output and "0600" in pw.output, pw.output


def test_serve_refuses_a_secret_key_file_others_can_read(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _start_stop(data)
    (data / "secret.key").chmod(0o644)
    message = _refused(Portway(data))
    assert "secret.key" in message and "chmod 600" in message, message


def test_serve_refuses_a_malformed_secret_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "my.key"
    key_file.write_text("not a key\n")
    key_file.chmod(0o600)
    message = _refused(Portway(tmp_path / "data", extra=["--secret-key-file", str(key_file)]))
    assert "my.key" in message and "32-byte key" in message, message


def _start_stop(data: Path) -> None:
    pw = Portway(data)
    pw.start()
    pw.stop()


# -- encryption at rest ---------------------------------------------------------------


def test_uploaded_private_key_is_in_no_byte_of_the_sqlite_store_and_is_still_served(
    tmp_path: Path, ca: trustme.CA, origin: Backend
) -> None:
    pw = Portway(tmp_path / "data")
    pw.start()
    leaf = Leaf(ca, "shop.alpha.test")
    try:
        cert_id = _upload(pw, leaf, "shop")
        _attach(pw, "shop.alpha.test", cert_id, origin.port)
        reply = _served_names(pw, "shop.alpha.test", _client_context(ca), {"shop.alpha.test"})
        assert reply.startswith(b"HTTP/1.1 200 ")
        leaf.assert_absent(_db_bytes(pw.data_dir), "the running node's database and WAL")
        r = pw.api("POST", "/v1/alpha/tokens", json={"token": {"role": "member"}})
        assert r.status_code == 201, r.text
        tokens = [pw.admin_token, r.json()["token"]["secret"]]
    finally:
        pw.stop()
    leaf.assert_absent(_db_bytes(pw.data_dir), "the database after shutdown")
    # Nor are the API tokens there: only their SHA-256 hashes.
    stored = _db_bytes(pw.data_dir)
    for token in tokens:
        assert token.encode() not in stored
        assert hashlib.sha256(token.encode()).hexdigest().encode() in stored
    [(row_id, kid, sealed)] = _key_rows(pw.data_dir)
    assert row_id == cert_id and kid and sealed


@pytest.mark.postgres
def test_pg_dump_of_the_store_holds_no_private_key_and_it_is_still_served(
    tmp_path: Path, postgres_url: str, ca: trustme.CA, origin: Backend
) -> None:
    url = _fresh_pg_database(postgres_url)
    key_file = tmp_path / "shared" / "secret.key"
    key_file.parent.mkdir()
    made = _portway_cli("keys", "add", "--secret-key-file", str(key_file))
    assert made.returncode == 0, made.stderr
    assert _mode(key_file) == 0o600
    extra = ["--store", url, "--secret-key-file", str(key_file)]
    nodes = [Portway(tmp_path / f"node{i}", extra=extra) for i in range(2)]
    nodes[1].admin_token = nodes[0].admin_token  # one PORTWAY_ADMIN_TOKEN per store
    for node in nodes:
        node.start()
    leaf = Leaf(ca, "shop.alpha.test")
    try:
        # Uploaded through one node, served by the other: both hold the same key file.
        cert_id = _upload(nodes[0], leaf, "shop")
        _attach(nodes[0], "shop.alpha.test", cert_id, origin.port)
        for node in nodes:
            _served_names(node, "shop.alpha.test", _client_context(ca), {"shop.alpha.test"})
        leaf.assert_absent(_pg_dump(url), "pg_dump of the store")
    finally:
        for node in nodes:
            node.stop()


def _pg_dump(url: str) -> bytes:
    bin_dir = pg_bin()
    assert bin_dir is not None
    parsed = sa.make_url(url)
    dump = subprocess.run(
        [
            str(bin_dir / "pg_dump"),
            "-h",
            str(parsed.host),
            "-p",
            str(parsed.port),
            "-U",
            str(parsed.username),
            "--data-only",
            str(parsed.database),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert b"COPY public.certificates" in dump.stdout  # the table is in the dump
    return dump.stdout


@pytest.mark.postgres
def test_serve_on_postgres_never_makes_a_key_file_of_its_own(
    tmp_path: Path, postgres_url: str
) -> None:
    url = _fresh_pg_database(postgres_url)
    message = _refused(Portway(tmp_path / "data", extra=["--store", url]))
    assert "portway keys add" in message, message
    assert not (tmp_path / "data" / "secret.key").exists()


# -- migration of keys stored by the old code ------------------------------------------


def _old_database(data_dir: Path, leaf: Leaf) -> str:
    """A store as the code before encryption left it: schema 0003, key in plain text."""
    data_dir.mkdir(mode=0o755)
    db = data_dir / "portway.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    config = Config()
    config.set_main_option(
        "script_location", str(Path(__file__).parents[2] / "src/portway/store/migrations")
    )
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, OLD_SCHEMA)
        conn.execute(sa.text("INSERT INTO projects VALUES ('alpha', CURRENT_TIMESTAMP)"))
        conn.execute(
            sa.text(
                "INSERT INTO certificates (id, project, name, chain_pem, key_pem, not_after,"
                " names, fingerprint, created_at) VALUES ('c' || hex(randomblob(15)), 'alpha',"
                " 'old', :chain, :key, NULL, :names, '', CURRENT_TIMESTAMP)"
            ),
            {"chain": leaf.chain, "key": leaf.key, "names": '["old.alpha.test"]'},
        )
        cert_id = conn.execute(sa.text("SELECT id FROM certificates")).scalar_one()
    engine.dispose()
    assert b"PRIVATE KEY" in _db_bytes(data_dir)  # the starting point is really plain
    return str(cert_id)


def test_plain_keys_left_by_the_old_code_are_encrypted_on_start_and_still_served(
    tmp_path: Path, ca: trustme.CA, origin: Backend
) -> None:
    leaf = Leaf(ca, "old.alpha.test")
    data = tmp_path / "data"
    cert_id = _old_database(data, leaf)
    assert _mode(data / "portway.db") == 0o644
    pw = Portway(data)
    pw.start()
    try:
        leaf.assert_absent(_db_bytes(data), "the database after the first start")
        _attach(pw, "old.alpha.test", cert_id, origin.port)
        reply = _served_names(pw, "old.alpha.test", _client_context(ca), {"old.alpha.test"})
        assert reply.startswith(b"HTTP/1.1 200 ")
    finally:
        pw.stop()
    leaf.assert_absent(_db_bytes(data), "the database after shutdown")
    assert [kid for _, kid, _ in _key_rows(data)] != [None]
    assert _mode(data / "portway.db") == 0o600


# -- rotation -------------------------------------------------------------------------


def _key_lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]


def test_rotation_reencrypts_every_key_while_the_node_serves_them(
    tmp_path: Path, ca: trustme.CA, origin: Backend
) -> None:
    from portway.errors import StoreError
    from portway.store.keyfile import read_keys
    from portway.store.keyring import Keyring, Sealed
    from portway.store.rows import key_context

    data = tmp_path / "data"
    key_file = data / "secret.key"
    pw = Portway(data)
    pw.start()
    ctx = _client_context(ca)
    before = Leaf(ca, "a.alpha.test")
    after = Leaf(ca, "b.alpha.test")
    try:
        _attach(pw, "a.alpha.test", _upload(pw, before, "before"), origin.port)
        _served_names(pw, "a.alpha.test", ctx, {"a.alpha.test"})
        old_keys = read_keys(key_file)
        assert len(old_keys) == 1

        rotated = _portway_cli("keys", "rotate", "--data-dir", str(data))
        assert rotated.returncode == 0, rotated.stderr
        keys = read_keys(key_file)
        assert len(keys) == 2 and keys[1] == old_keys[0] and _mode(key_file) == 0o600
        new_kid = keys[0].kid
        assert {kid for _, kid, _ in _key_rows(data)} == {new_kid}
        old_ring = Keyring(old_keys)
        for row_id, _, sealed in _key_rows(data):
            for kid in (new_kid, old_keys[0].kid):  # the old key opens no row any more
                with pytest.raises(StoreError):
                    old_ring.open(Sealed(kid=kid, text=sealed), key_context(row_id))

        # The running node picks the new key up without a restart: it seals with it...
        _attach(pw, "b.alpha.test", _upload(pw, after, "after"), origin.port)
        _served_names(pw, "b.alpha.test", ctx, {"b.alpha.test"})
        assert {kid for _, kid, _ in _key_rows(data)} == {new_kid}
        _served_names(pw, "a.alpha.test", ctx, {"a.alpha.test"})

        pruned = _portway_cli("keys", "prune", "--data-dir", str(data))
        assert pruned.returncode == 0, pruned.stderr
        assert old_keys[0].kid in pruned.stdout
        assert len(_key_lines(key_file)) == 1
        assert read_keys(key_file) == [keys[0]]
    finally:
        pw.stop()
    before.assert_absent(_db_bytes(data), "the database after rotation")
    after.assert_absent(_db_bytes(data), "the database after rotation")

    # ...and a restart with only the new key serves both certificates.
    again = Portway(data)
    again.start()
    try:
        _served_names(again, "a.alpha.test", ctx, {"a.alpha.test"})
        _served_names(again, "b.alpha.test", ctx, {"b.alpha.test"})
    finally:
        again.stop()
