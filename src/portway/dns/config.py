"""The ``dns_*`` settings: their parsers (rows of runtime/settings.py) and ``DnsConfig``,
what the RFC 2136 client needs, checked as a whole and with the TSIG secret read.

The settings table has no groups, so the ``[dns]`` settings are flat keys with a
``dns_`` prefix. DNS management is off while ``dns_server`` is empty.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path

from portway.dns import defaults
from portway.errors import ConfigError, PortwayError
from portway.runtime.config import Listen, ServeConfig

TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha512", "hmac-sha384", "hmac-sha224", "hmac-sha1")
_OWNER = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}\Z")
# A key clause as tsig-keygen writes it: key "name" { algorithm a; secret "s"; };
_KEY_NAME = re.compile(r'key\s+"?([^"\s{]+)"?\s*\{')
_KEY_ALGORITHM = re.compile(r"algorithm\s+\"?([A-Za-z0-9.-]+)\"?\s*;")
_KEY_SECRET = re.compile(r'secret\s+"([^"]+)"\s*;')


def parse_dns_server(value: str, *, flag: str) -> Listen | None:
    """``IP[:PORT]`` or ``[IPv6]:PORT`` of the authoritative server (port 53 if left
    out); empty: no DNS management."""
    text = value.strip()
    if not text:
        return None
    host, port = text, "53"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ("53" if not rest else "")
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        address = str(ipaddress.ip_address(host))
    except ValueError:
        raise ConfigError(f"{flag}: expected IP[:PORT], got {value!r}", field=flag) from None
    if not port.isdigit() or not 0 < int(port) <= 65535:
        raise ConfigError(f"{flag}: expected IP[:PORT], got {value!r}", field=flag)
    return Listen(host=address, port=int(port))


def parse_addresses(values: tuple[str, ...], *, flag: str) -> tuple[str, ...]:
    """IPv4 and IPv6 addresses (repeatable, or comma-separated), normalized."""
    out: list[str] = []
    for value in values:
        for item in (i.strip() for i in value.split(",")):
            if not item:
                continue
            try:
                address = str(ipaddress.ip_address(item))
            except ValueError:
                raise ConfigError(f"{flag}: {item!r} is not an IP address", field=flag) from None
            if address not in out:
                out.append(address)
    return tuple(out)


def parse_zones(values: tuple[str, ...], *, flag: str) -> tuple[str, ...]:
    from portway.model import normalize_hostname

    out: list[str] = []
    for item in (i.strip() for v in values for i in v.split(",")):
        if not item:
            continue
        try:
            out.append(normalize_hostname(item, field=flag, wildcard_ok=False))
        except PortwayError as exc:
            raise ConfigError(f"{flag}: {exc.message}", field=flag) from None
    return tuple(dict.fromkeys(out))


def parse_algorithm(value: str, *, flag: str) -> str:
    algorithm = value.strip().lower()
    if algorithm not in TSIG_ALGORITHMS:
        raise ConfigError(
            f"{flag}: expected one of {', '.join(TSIG_ALGORITHMS)}, got {value!r}", field=flag
        )
    return algorithm


def parse_owner(value: str, *, flag: str) -> str:
    """The marker's owner: lower-case letters, digits, '.', '_' and '-' (it goes into a
    TXT string and a comma-separated list)."""
    if not _OWNER.match(value):
        raise ConfigError(
            f"{flag}: expected lower-case letters, digits, '.', '_' or '-', got {value!r}",
            field=flag,
        )
    return value


@dataclass(frozen=True, kw_only=True, slots=True)
class DnsConfig:
    """Everything the RFC 2136 client needs; ``secret`` is the TSIG key (base64)."""

    server: Listen
    zones: tuple[str, ...]
    key_name: str
    algorithm: str
    secret: str = field(repr=False)
    addresses: tuple[str, ...]
    ttl: int = defaults.TTL
    owner: str = defaults.OWNER
    timeout: float = defaults.TIMEOUT


def dns_config(config: ServeConfig) -> DnsConfig | None:
    """The node's DNS settings, or None when ``dns_server`` is empty; a ConfigError names
    the first missing or unreadable setting."""
    if config.dns_server is None:
        return None
    required = {
        "--dns-zone": config.dns_zones,
        "--dns-tsig-name": config.dns_tsig_name,
        "--dns-tsig-secret-file": config.dns_tsig_secret_file,
        "--dns-address": config.dns_addresses,
    }
    for flag, value in required.items():
        if not value:
            raise ConfigError(f"{flag} is required with --dns-server", field=flag)
    assert config.dns_tsig_secret_file is not None
    secret = read_secret(
        config.dns_tsig_secret_file, name=config.dns_tsig_name, algorithm=config.dns_tsig_algorithm
    )
    return DnsConfig(
        server=config.dns_server,
        zones=config.dns_zones,
        key_name=config.dns_tsig_name,
        algorithm=config.dns_tsig_algorithm,
        secret=secret,
        addresses=config.dns_addresses,
        ttl=config.dns_ttl,
        owner=config.dns_owner,
        timeout=config.dns_timeout,
    )


def read_secret(path: Path, *, name: str, algorithm: str) -> str:
    """The base64 secret in ``path``: the file holds just the secret, or a key clause as
    ``tsig-keygen`` writes it, whose name and algorithm must then match the settings."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise _secret_error(f"cannot read {path}: {exc.strerror or exc}") from None
    clause = _KEY_SECRET.search(text)
    if clause:
        _check_clause(text, path, name=name, algorithm=algorithm)
    secret = clause.group(1) if clause else text.strip()
    try:
        base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise _secret_error(f"{path} holds no base64 TSIG secret") from None
    if not secret:
        raise _secret_error(f"{path} holds no base64 TSIG secret")
    return secret


def _check_clause(text: str, path: Path, *, name: str, algorithm: str) -> None:
    for what, pattern, want in (
        ("name", _KEY_NAME, name),
        ("algorithm", _KEY_ALGORITHM, algorithm),
    ):
        found = pattern.search(text)
        if found and found.group(1).lower().rstrip(".") != want.lower().rstrip("."):
            raise _secret_error(
                f"{path} is the key {what} {found.group(1)!r}, the settings say {want!r}"
            )


def _secret_error(message: str) -> ConfigError:
    flag = "--dns-tsig-secret-file"
    return ConfigError(f"{flag}: {message}", field=flag)
