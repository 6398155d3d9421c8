"""The ``keystone_*`` settings as one ``KeystoneConfig``, with the password read.

Like ``[dns]``, the ``[keystone]`` settings are flat keys of the settings table with a
``keystone_`` prefix; Keystone validation is off while ``keystone_url`` is empty.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from portway.auth import defaults
from portway.errors import ConfigError
from portway.runtime.config import ServeConfig


def parse_keystone_url(value: str, *, flag: str) -> str | None:
    """``http(s)://host[:port][/path]``, kept without a trailing ``/`` or ``/v3`` (the
    client adds ``/v3/...``); empty: off."""
    text = value.strip().rstrip("/")
    if not text:
        return None
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ConfigError(f"{flag}: expected an http(s) URL, got {value!r}", field=flag)
    return text.removesuffix("/v3")


@dataclass(frozen=True, kw_only=True, slots=True)
class KeystoneConfig:
    url: str  # without /v3
    user: str
    password: str = field(repr=False)
    project: str = defaults.PROJECT
    user_domain: str = defaults.DOMAIN
    project_domain: str = defaults.DOMAIN
    cafile: Path | None = None
    cache_ttl: float = defaults.CACHE_TTL
    cache_size: int = defaults.CACHE_SIZE
    timeout: float = defaults.TIMEOUT


def keystone_config(config: ServeConfig) -> KeystoneConfig | None:
    """The node's Keystone settings, or None when ``keystone_url`` is empty."""
    if config.keystone_url is None:
        return None
    if not config.keystone_user:
        raise ConfigError(
            "--keystone-user is required with --keystone-url", field="--keystone-user"
        )
    return KeystoneConfig(
        url=config.keystone_url,
        user=config.keystone_user,
        password=read_password(config.keystone_password_file),
        project=config.keystone_project,
        user_domain=config.keystone_user_domain,
        project_domain=config.keystone_project_domain,
        cafile=config.keystone_cafile,
        cache_ttl=config.keystone_cache_ttl,
        cache_size=config.keystone_cache_size,
        timeout=config.keystone_timeout,
    )


def read_password(path: Path | None) -> str:
    flag = "--keystone-password-file"
    if path is None:
        raise ConfigError(f"{flag} is required with --keystone-url", field=flag)
    try:
        password = path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(
            f"{flag}: cannot read {path}: {exc.strerror or exc}", field=flag
        ) from None
    if not password:
        raise ConfigError(f"{flag}: {path} is empty", field=flag)
    return password
