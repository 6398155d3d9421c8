"""``portway keys``: add, rotate, prune and list on a real SQLite store and key file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import trustme
from click.testing import CliRunner, Result

from portway.cli.main import main
from portway.model import Certificate, Project
from portway.runtime.config import sqlite_url
from portway.store import open_store
from portway.store.keyfile import FileKeyring, create_key_file, read_keys


def _keys(*args: str) -> Result:
    names = ("CONFIG", "DATA_DIR", "STORE", "SECRET_KEY_FILE")
    env: dict[str, str | None] = {f"PORTWAY_{n}": None for n in names}
    return CliRunner().invoke(main, ["keys", *args], env=env)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data dir with a key file and a store holding one certificate."""
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    create_key_file(data / "secret.key")
    store = open_store(sqlite_url(data), FileKeyring(data / "secret.key"))
    key = trustme.CA().issue_cert("a.test").private_key_pem.bytes().decode()
    with store.transaction("test") as tx:
        tx.insert_project(Project(name="alpha"))
        tx.insert_certificate(
            Certificate(id="c1", project="alpha", name="c", chain_pem="C", key_pem=key)
        )
        tx.record(kind="certificate", action="create", object_id="c1", project="alpha")
    store.close()
    return data


def test_add_makes_a_0600_file_then_appends_a_key_that_does_not_seal(tmp_path: Path) -> None:
    path = tmp_path / "node" / "secret.key"
    path.parent.mkdir()
    first = _keys("add", "--secret-key-file", str(path))
    assert first.exit_code == 0, first.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    [current] = read_keys(path)
    assert current.kid in first.output
    second = _keys("add", "--secret-key-file", str(path))
    assert second.exit_code == 0, second.output
    assert read_keys(path)[0] == current and len(read_keys(path)) == 2


def test_rotate_list_prune(data: Path) -> None:
    [old] = read_keys(data / "secret.key")
    rotated = _keys("rotate", "--data-dir", str(data))
    assert rotated.exit_code == 0, rotated.output
    new, kept = read_keys(data / "secret.key")
    assert kept == old and f"key {new.kid} now seals; sealed 1 certificate keys" in rotated.output
    listed = _keys("list", "--data-dir", str(data))
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split() == [new.kid, "current", "1", "certificates"]
    assert lines[1].split() == [old.kid, "opens", "0", "certificates"]
    pruned = _keys("prune", "--data-dir", str(data))
    assert pruned.exit_code == 0 and f"removed {old.kid}" in pruned.output
    assert read_keys(data / "secret.key") == [new]
    again = _keys("prune", "--data-dir", str(data))
    assert again.exit_code == 0 and "nothing to remove" in again.output


def test_rotate_to_an_unknown_key_changes_nothing(data: Path) -> None:
    before = (data / "secret.key").read_bytes()
    result = _keys("rotate", "--data-dir", str(data), "--to", "0123456789abcdef")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"portway: key 0123456789abcdef is not in {data / 'secret.key'}"
    ]
    assert (data / "secret.key").read_bytes() == before


def test_a_key_file_others_can_read_is_refused_in_one_line(data: Path) -> None:
    (data / "secret.key").chmod(0o644)
    result = _keys("rotate", "--data-dir", str(data))
    assert result.exit_code == 1
    [line] = result.output.strip().splitlines()
    assert line.startswith("portway: secret key file") and "chmod 600" in line


def test_rotate_without_a_store_says_so(tmp_path: Path) -> None:
    create_key_file(tmp_path / "secret.key")
    result = _keys("rotate", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.output.strip() == f"portway: no store in {tmp_path} (give --data-dir or --store)"


def test_keys_read_serves_config_file_and_a_flag_beats_it(data: Path, tmp_path: Path) -> None:
    config = tmp_path / "portway.toml"
    config.write_text(f'data_dir = "{data}"\n')
    listed = _keys("list", "--config", str(config))
    assert listed.exit_code == 0, listed.output
    [current] = read_keys(data / "secret.key")
    assert listed.output.split()[:3] == [current.kid, "current", "1"]
    elsewhere = _keys("list", "--config", str(config), "--data-dir", str(tmp_path / "none"))
    assert elsewhere.exit_code == 1 and "secret.key does not exist" in elsewhere.output
