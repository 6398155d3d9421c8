"""The data dir is made 0700, and an open one (and its files) tightened, with a log line."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from portway.runtime.datadir import prepare_data_dir


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_new_data_dir_is_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        prepare_data_dir(tmp_path / "a" / "data")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a" / "data") == 0o700


def test_an_open_data_dir_and_its_files_are_tightened_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    for name, mode in (("portway.db", 0o644), ("ca.pem", 0o640), ("default-key.pem", 0o600)):
        (data / name).write_text(name)
        (data / name).chmod(mode)
    (data / "secret.key").write_text("k")
    (data / "secret.key").chmod(0o644)
    outside = tmp_path / "outside"
    outside.write_text("not ours")
    outside.chmod(0o644)
    (data / "link").symlink_to(outside)
    with caplog.at_level(logging.WARNING):
        prepare_data_dir(data, leave=data / "secret.key")
    assert _mode(data) == 0o700
    assert [_mode(data / n) for n in ("portway.db", "ca.pem", "default-key.pem")] == [0o600] * 3
    assert _mode(data / "secret.key") == 0o644  # refused later, never quietly fixed
    assert _mode(outside) == 0o644  # a symlink is not followed out of the data dir
    assert "was mode 0755" in caplog.text
    assert "ca.pem (0640), portway.db (0644)" in caplog.text


def test_a_private_data_dir_logs_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    prepare_data_dir(tmp_path / "data")
    (tmp_path / "data" / "f").touch(mode=0o600)
    with caplog.at_level(logging.WARNING):
        prepare_data_dir(tmp_path / "data")
    assert caplog.text == ""
