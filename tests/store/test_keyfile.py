"""The secret key file: 0600 only, one base64 key per line (or 32 raw bytes), re-read
when it changes."""

from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path

import pytest

from portway.errors import ConfigError
from portway.store.keyfile import FileKeyring, create_key_file, read_keys, write_keys
from portway.store.keyring import SecretKey


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _private(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def test_created_file_is_0600_whatever_the_umask_and_holds_one_key(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        key = create_key_file(tmp_path / "secret.key")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "secret.key") == 0o600
    assert read_keys(tmp_path / "secret.key") == [key]
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]  # no temporary left


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    first = create_key_file(tmp_path / "secret.key")
    with pytest.raises(FileExistsError):
        create_key_file(tmp_path / "secret.key")
    assert read_keys(tmp_path / "secret.key") == [first]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_file_group_or_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret.key"
    create_key_file(path)
    path.chmod(mode)
    with pytest.raises(ConfigError, match=f"mode {mode:04o}.*chmod 600"):
        read_keys(path)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", "neither 32 raw bytes|holds no key"),
        (b"# only a comment\n\n", "holds no key"),
        (b"not a key\n", "line 1: not a base64-encoded 32-byte key"),
        (base64.b64encode(bytes(16)) + b"\n", "line 1: not a base64-encoded 32-byte key"),
        (b"\xff" * 40, "neither 32 raw bytes nor base64 text"),
        (base64.b64encode(bytes(32)) * 2 + b"\n", "32-byte key"),
    ],
)
def test_malformed_files_are_refused_with_the_line(
    tmp_path: Path, content: bytes, error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        read_keys(_private(tmp_path / "k", content))


def test_the_same_key_twice_is_refused(tmp_path: Path) -> None:
    line = base64.b64encode(bytes(32)) + b"\n"
    with pytest.raises(ConfigError, match="same key twice"):
        read_keys(_private(tmp_path / "k", line + line))


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_keys(tmp_path / "nope")


def test_32_raw_bytes_are_one_key(tmp_path: Path) -> None:
    raw = os.urandom(32)
    assert read_keys(_private(tmp_path / "k", raw)) == [SecretKey(raw)]


def test_written_file_keeps_the_order_comments_aside(tmp_path: Path) -> None:
    keys = [SecretKey.generate() for _ in range(3)]
    path = tmp_path / "k"
    write_keys(path, keys)
    assert read_keys(path) == keys and _mode(path) == 0o600
    assert path.read_text().startswith("# Portway secret keys")


def test_file_keyring_reads_the_file_again_when_it_changes(tmp_path: Path) -> None:
    old, new = SecretKey.generate(), SecretKey.generate()
    path = tmp_path / "k"
    write_keys(path, [old])
    ring = FileKeyring(path)
    ring.load()
    sealed_old = ring.seal("secret", "c:1")
    assert sealed_old.kid == old.kid
    write_keys(path, [new, old])
    assert ring.seal("secret", "c:1").kid == new.kid
    assert ring.open(sealed_old, "c:1") == "secret"


def test_file_keyring_keeps_its_keys_when_the_file_goes_bad(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = SecretKey.generate()
    path = tmp_path / "k"
    write_keys(path, [key])
    ring = FileKeyring(path)
    ring.load()
    path.chmod(0o644)
    with caplog.at_level(logging.ERROR):
        assert ring.kids() == (key.kid,)
    assert "readable by group or others" in caplog.text


def test_file_keyring_load_reports_a_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        FileKeyring(tmp_path / "k").load()
