"""Expected failures print one line on stderr, exit 1 (API) or 2 (usage), never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_api_error_is_one_line_with_status_and_message(api, cli):
    api.error("POST", "/v1/alpha/proxies", 409, "Conflict", "hostname x is already used")
    result = cli("proxy", "create", "x", "-p", "alpha")
    assert result.exit_code == 1
    assert result.stderr == "portway: 409 Conflict: hostname x is already used\n"
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("status", "title"),
    [(400, "Bad Request"), (401, "Unauthorized"), (403, "Forbidden"), (422, "Unprocessable")],
)
def test_each_error_status_is_reported(api, cli, status, title):
    api.error("GET", "/v1/projects", status, title, "nope")
    result = cli("project", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"portway: {status} {title}")
    assert result.stderr.endswith(": nope\n")


def test_server_error_without_error_document_shows_body_text(api, cli):
    api.reply("GET", "/v1/projects", 500, b"Internal Server Error\n  boom")
    result = cli("project", "list")
    assert result.exit_code == 1
    assert result.stderr == "portway: 500 Internal Server Error: Internal Server Error boom\n"


def test_success_with_bad_json_is_one_line(api, cli):
    api.reply("GET", "/v1/projects", 200, b"<html>not json</html>")
    result = cli("project", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith("portway: the API at http://127.0.0.1:")
    assert result.stderr.endswith("answered 200 with a body that is not JSON\n")


def test_unreachable_api(cli, dead_url):
    result = cli("project", "list", env={"PORTWAY_URL": dead_url})
    assert result.exit_code == 1
    assert result.stderr == f"portway: cannot reach the API at {dead_url}: connection refused\n"


def test_url_flag_overrides_environment(api, cli, dead_url):
    api.reply("GET", "/v1/projects", 200, {"projects": []})
    result = cli("project", "list", "--url", api.url, env={"PORTWAY_URL": dead_url})
    assert result.exit_code == 0, result.stderr


def test_bad_url_is_a_usage_error(cli):
    result = cli("project", "list", "--url", "127.0.0.1:5668")
    assert result.exit_code == 2
    assert "is not an http:// or https:// URL" in result.stderr


def test_missing_project_is_a_usage_error(api, cli):
    result = cli("proxy", "list")
    assert result.exit_code == 2
    assert result.stderr == (
        "portway: no project given: pass --project/-p or set PORTWAY_PROJECT"
        " (try 'portway proxy list --help')\n"
    )
    assert api.requests == []


def test_missing_argument_is_one_line(cli):
    result = cli("backend", "add", "px1", "-p", "alpha")
    assert result.exit_code == 2
    assert result.stderr == (
        "portway: Missing argument 'ADDRESS' (try 'portway backend add --help')\n"
    )


def test_unknown_command_is_one_line(cli):
    result = cli("proxy", "frobnicate")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "No such command 'frobnicate'" in result.stderr


def test_help_exits_zero(cli):
    result = cli("proxy", "--help")
    assert result.exit_code == 0
    assert "create" in result.stdout


def test_real_process_prints_no_traceback_when_api_is_down(dead_url):
    code = "from portway.cli.main import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "proxy", "list", "-p", "alpha", "--url", dead_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == f"portway: cannot reach the API at {dead_url}: connection refused\n"
