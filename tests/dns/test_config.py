"""The dns_* settings: parsed from flags/file values, checked as a whole, key read."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from portway.dns.config import DnsConfig, dns_config
from portway.errors import ConfigError
from portway.runtime.configfile import Sources


def load(tmp_path: Path, **given: object) -> DnsConfig | None:
    values = {"dns_server": "127.0.0.1:5353", "dns_zones": ("cloud.test",)}
    values |= {"dns_tsig_name": "portway", "dns_addresses": ("192.0.2.1",)}
    values |= given  # type: ignore[arg-type]
    return dns_config(Sources(given=values).load())  # type: ignore[arg-type]


def keygen(tmp_path: Path, name: str = "portway", algorithm: str = "hmac-sha256") -> Path:
    path = tmp_path / "dns.key"
    key = subprocess.run(["tsig-keygen", "-a", algorithm, name], capture_output=True, text=True)
    path.write_text(key.stdout)
    return path


def test_no_dns_server_means_no_dns() -> None:
    assert dns_config(Sources().load()) is None


def test_a_tsig_keygen_file_is_read(tmp_path: Path) -> None:
    config = load(tmp_path, dns_tsig_secret_file=str(keygen(tmp_path)))
    assert config is not None
    assert (str(config.server), config.zones, config.key_name) == (
        "127.0.0.1:5353",
        ("cloud.test",),
        "portway",
    )
    assert len(config.secret) == 44
    assert config.secret not in repr(config)


def test_a_file_with_only_the_secret_is_read(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n")
    config = load(tmp_path, dns_tsig_secret_file=str(tmp_path / "secret"))
    assert config is not None and config.secret == "c2VjcmV0LXNlY3JldC1zZWNyZXQ="


def test_a_key_file_for_another_key_is_refused(tmp_path: Path) -> None:
    path = keygen(tmp_path, name="someone-else")
    with pytest.raises(ConfigError, match="is the key name 'someone-else', the settings say"):
        load(tmp_path, dns_tsig_secret_file=str(path))
    path = keygen(tmp_path, algorithm="hmac-sha512")
    with pytest.raises(ConfigError, match="key algorithm 'hmac-sha512'"):
        load(tmp_path, dns_tsig_secret_file=str(path))


def test_an_unreadable_or_empty_secret_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--dns-tsig-secret-file: cannot read"):
        load(tmp_path, dns_tsig_secret_file=str(tmp_path / "missing"))
    (tmp_path / "bad").write_text("not base64!\n")
    with pytest.raises(ConfigError, match="holds no base64 TSIG secret"):
        load(tmp_path, dns_tsig_secret_file=str(tmp_path / "bad"))


@pytest.mark.parametrize(
    ("missing", "flag"),
    [
        ("dns_zones", "--dns-zone"),
        ("dns_addresses", "--dns-address"),
        ("dns_tsig_name", "--dns-tsig-name"),
        ("dns_tsig_secret_file", "--dns-tsig-secret-file"),
    ],
)
def test_a_dns_server_needs_the_rest(tmp_path: Path, missing: str, flag: str) -> None:
    given: dict[str, object] = {"dns_tsig_secret_file": str(keygen(tmp_path))}
    given[missing] = "" if missing in ("dns_tsig_name", "dns_tsig_secret_file") else ()
    with pytest.raises(ConfigError, match=f"{flag} is required with --dns-server"):
        load(tmp_path, **given)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("dns_server", "ns.example.org", "--dns-server: expected IP[:PORT]"),
        ("dns_server", "127.0.0.1:0", "--dns-server: expected IP[:PORT]"),
        ("dns_addresses", ("192.0.2.300",), "--dns-address: '192.0.2.300' is not an IP"),
        ("dns_zones", ("-bad.test",), "--dns-zone: "),
        ("dns_tsig_algorithm", "hmac-md5", "--dns-tsig-algorithm: expected one of"),
        ("dns_owner", "Portway,x", "--dns-owner: expected lower-case letters"),
    ],
)
def test_bad_values_are_refused_naming_the_flag(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Sources(given={key: value}).load()  # type: ignore[dict-item]


def test_servers_and_addresses_are_normalized() -> None:
    config = Sources(
        given={"dns_server": "[::1]:5353", "dns_addresses": ("192.0.2.1, 2001:DB8:0::1",)}
    ).load()
    assert (config.dns_server and config.dns_server.host, config.dns_addresses) == (
        "::1",
        ("192.0.2.1", "2001:db8::1"),
    )
    assert str(Sources(given={"dns_server": "127.0.0.1"}).load().dns_server) == "127.0.0.1:53"
