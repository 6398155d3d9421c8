"""The keystone_* settings: the URL's form, the service credentials, the password file."""

from __future__ import annotations

from pathlib import Path

import pytest

from portway.auth.config import keystone_config
from portway.errors import ConfigError
from portway.runtime.configfile import Sources, check
from portway.runtime.settings import BY_KEY


def test_no_keystone_url_means_portway_tokens_only() -> None:
    assert keystone_config(Sources().load()) is None


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://keystone.example.org:5000/v3", "https://keystone.example.org:5000"),
        ("https://keystone.example.org:5000/v3/", "https://keystone.example.org:5000"),
        ("http://127.0.0.1:5000/identity", "http://127.0.0.1:5000/identity"),
    ],
)
def test_the_url_is_kept_without_v3(tmp_path: Path, given: str, kept: str) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    values = {"keystone_url": given, "keystone_user": "portway"}
    config = keystone_config(
        Sources(given=values | {"keystone_password_file": str(tmp_path / "pw")}).load()
    )
    assert config is not None
    assert (config.url, config.password, config.project) == (kept, "s3cret", "service")
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize("url", ["keystone:5000", "ftp://keystone/", "https://", "http://k/?x=1"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="--keystone-url: expected an http"):
        Sources(given={"keystone_url": url}).load()


def test_the_service_user_and_its_password_are_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--keystone-user is required"):
        keystone_config(Sources(given={"keystone_url": "http://127.0.0.1:5000"}).load())
    given = {"keystone_url": "http://127.0.0.1:5000", "keystone_user": "portway"}
    with pytest.raises(ConfigError, match="--keystone-password-file is required"):
        keystone_config(Sources(given=given).load())
    (tmp_path / "empty").write_text("\n")
    for path, message in ((tmp_path / "missing", "cannot read"), (tmp_path / "empty", "empty")):
        with pytest.raises(ConfigError, match=f"--keystone-password-file: .*{message}"):
            keystone_config(Sources(given=given | {"keystone_password_file": str(path)}).load())


def test_the_cache_ttl_is_bounded_in_the_config_file() -> None:
    with pytest.raises(ConfigError, match="key 'keystone_cache_ttl': must be at most 300"):
        check(BY_KEY["keystone_cache_ttl"], 301, "key 'keystone_cache_ttl'")
