"""``portway serve --config FILE``: the file's keys, their precedence under flags and
environment variables, and bad files refused with one line naming the key.

``--check-config`` prints the settings the node would run with, so these tests read the
real command's result without starting a node.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from portway.cli.main import main
from portway.runtime.settings import SETTINGS


def check(tmp_path: Path, text: str | None, *args: str, **env: str) -> tuple[int, str]:
    """Run ``portway serve [--config FILE] --check-config ARGS``; (exit code, output)."""
    argv = ["serve", "--check-config", *args]
    if text is not None:
        path = tmp_path / "portway.toml"
        path.write_text(text)
        argv += ["--config", str(path)]
    clean = {s.envvar: None for s in SETTINGS} | {"PORTWAY_CONFIG": None}
    result = CliRunner().invoke(main, argv, env={**clean, **env})
    return result.exit_code, result.output


def effective(tmp_path: Path, text: str | None, *args: str, **env: str) -> dict[str, Any]:
    code, out = check(tmp_path, text, *args, **env)
    assert code == 0, out
    return tomllib.loads(out)


def test_file_values_replace_defaults(tmp_path: Path) -> None:
    got = effective(
        tmp_path,
        'http = "127.0.0.1:9080"\nworkers = 3\nconnect_timeout = 2\n'
        'trusted_proxies = ["10.0.0.0/8", "192.0.2.1"]\n',
    )
    assert got["http"] == "127.0.0.1:9080"
    assert got["workers"] == 3
    assert got["connect_timeout"] == 2.0
    assert got["trusted_proxies"] == ["10.0.0.0/8", "192.0.2.1"]
    assert got["max_header_bytes"] == 32768  # untouched keys keep their defaults


def test_flag_beats_env_beats_file_beats_default(tmp_path: Path) -> None:
    text = "workers = 2\nread_timeout = 30\nkeepalive_timeout = 20\n"
    env = {"PORTWAY_WORKERS": "4", "PORTWAY_READ_TIMEOUT": "40"}
    got = effective(tmp_path, text, "--workers", "6", **env)
    assert got["workers"] == 6  # flag over environment and file
    assert got["read_timeout"] == 40.0  # environment over file
    assert got["keepalive_timeout"] == 20.0  # file over default
    assert got["client_header_timeout"] == 10.0  # default


def test_a_flag_equal_to_the_default_still_beats_the_file(tmp_path: Path) -> None:
    got = effective(tmp_path, "workers = 2\n", "--workers", "0")
    assert got["workers"] == 0


def test_the_config_path_can_come_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "env.toml"
    path.write_text("max_connections = 77\n")
    got = effective(tmp_path, None, PORTWAY_CONFIG=str(path))
    assert got["max_connections"] == 77


def test_check_config_output_is_a_config_file_with_every_key(tmp_path: Path) -> None:
    code, out = check(tmp_path, None)
    assert code == 0
    assert list(tomllib.loads(out)) == [s.key for s in SETTINGS]
    # Fed back as a file, it loads and yields the same settings.
    assert effective(tmp_path, out) == tomllib.loads(out)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("foo = 1\n", "unknown key 'foo'"),
        ("[limits]\nconnect_timeout = 1\n", "unknown key 'limits'"),
        ("[dataplane]\nconnect_timeout = 1\n", "key 'dataplane': expected a string"),
        ('workers = "2"\n', "key 'workers': expected an integer, got a string"),
        ("workers = 1.5\n", "key 'workers': expected an integer, got a number"),
        ("workers = true\n", "key 'workers': expected an integer, got a boolean"),
        ("workers = 300\n", "key 'workers': must be at most 256, got 300"),
        ("max_connections = 0\n", "key 'max_connections': must be at least 1, got 0"),
        ('connect_timeout = "5s"\n', "key 'connect_timeout': expected a number, got a string"),
        ('trusted_proxies = "10.0.0.0/8"\n', "expected a list of strings, got a string"),
        ("trusted_proxies = [1]\n", "key 'trusted_proxies': expected a list of strings"),
        ('trusted_proxies = ["10.0.0.0/33"]\n', "key 'trusted_proxies': '10.0.0.0/33' is not"),
        ('http = "nonsense"\n', "key 'http': expected HOST:PORT, got 'nonsense'"),
        ('default_zone = "-bad-"\n', "key 'default_zone': "),
        ('log_level = "loud"\n', "key 'log_level': expected one of debug, info"),
        ("http = 80\n", "key 'http': expected a string, got an integer"),
        ("workers = 2\nworkers = 3\n", "not valid TOML: "),
        ("workers =\n", "not valid TOML: Invalid value (at line 1, column 10)"),
    ],
)
def test_bad_file_stops_the_start_with_one_line(tmp_path: Path, text: str, line: str) -> None:
    code, out = check(tmp_path, text)
    lines = out.strip().splitlines()
    assert code == 2
    assert len(lines) == 1, out
    assert lines[0].startswith(f"portway: config {tmp_path / 'portway.toml'}: "), out
    assert line in lines[0], out


def test_toml_error_names_the_line(tmp_path: Path) -> None:
    code, out = check(tmp_path, 'workers = 1\nhttp = "127.0.0.1:1\n')
    assert code == 2
    assert "(at line 2," in out


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["serve", "--check-config", "--config", str(tmp_path / "none.toml")]
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"portway: config {tmp_path / 'none.toml'}: cannot read it: No such file or directory"
    )


def test_a_bad_file_value_overridden_by_a_flag_is_not_checked_by_parse(tmp_path: Path) -> None:
    # The file's type is always checked; its value is replaced by the flag's before parsing.
    got = effective(tmp_path, 'http = "nonsense"\n', "--http", "127.0.0.1:9")
    assert got["http"] == "127.0.0.1:9"
    code, out = check(tmp_path, "http = 9\n", "--http", "127.0.0.1:9")
    assert code == 2 and "key 'http': expected a string" in out


def test_bad_flag_value_names_the_flag_not_the_file(tmp_path: Path) -> None:
    code, out = check(tmp_path, 'http = "127.0.0.1:1"\n', "--http", "nonsense")
    assert code == 2
    assert out.strip() == "portway: --http: expected HOST:PORT, got 'nonsense'"
    code, out = check(tmp_path, None, PORTWAY_HTTPS="nonsense")
    assert out.strip() == "portway: PORTWAY_HTTPS: expected HOST:PORT, got 'nonsense'"


def test_healthz_path_must_be_an_absolute_path(tmp_path: Path) -> None:
    assert effective(tmp_path, None, "--healthz-path", "/.well-known/healthz")["healthz_path"] == (
        "/.well-known/healthz"
    )
    for bad in ("healthz", "/a b", "/x?y=1", "/\x00"):
        code, out = check(tmp_path, None, "--healthz-path", bad)
        assert code != 0 and "--healthz-path" in out and "Traceback" not in out, (bad, out)
