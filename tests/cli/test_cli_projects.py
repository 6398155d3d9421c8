"""portway project / token: the requests sent and what is printed."""

from __future__ import annotations

import json

import yaml


def test_project_create_posts_envelope_with_token(api, cli):
    api.reply("POST", "/v1/projects", 201, {"project": {"id": "p1", "name": "alpha"}})
    result = cli("project", "create", "alpha")
    assert result.exit_code == 0, result.stderr
    assert api.last.method == "POST"
    assert api.last.path == "/v1/projects"
    assert api.last.body == {"project": {"name": "alpha"}}
    assert api.last.headers["x-auth-token"] == api.token
    assert "alpha" in result.stdout


def test_project_list_table_has_aligned_columns(api, cli):
    projects = [{"id": "1", "name": "alpha"}, {"id": "22", "name": "beta-long-name"}]
    api.reply("GET", "/v1/projects", 200, {"projects": projects})
    result = cli("project", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME"]
    assert lines[1].index("alpha") == lines[2].index("beta-long-name") == lines[0].index("NAME")


def test_project_list_json_is_the_bare_list(api, cli):
    api.reply("GET", "/v1/projects", 200, {"projects": [{"id": "1", "name": "alpha"}]})
    result = cli("project", "list", "-f", "json")
    assert json.loads(result.stdout) == [{"id": "1", "name": "alpha"}]


def test_format_on_the_group_applies_to_the_command(api, cli):
    api.reply("GET", "/v1/projects", 200, {"projects": [{"id": "1", "name": "alpha"}]})
    result = cli("-f", "yaml", "project", "list")
    assert yaml.safe_load(result.stdout) == [{"id": "1", "name": "alpha"}]


def test_empty_list_says_none(api, cli):
    api.reply("GET", "/v1/projects", 200, {"projects": []})
    result = cli("project", "list")
    assert result.exit_code == 0
    assert result.stdout.strip() == "(none)"


def test_token_create_defaults_to_member_and_prints_secret(api, cli):
    reply = {"token": {"id": "t1", "secret": "pw_abc", "role": "member"}}
    api.reply("POST", "/v1/alpha/tokens", 201, reply)
    result = cli("token", "create", "-p", "alpha")
    assert result.exit_code == 0, result.stderr
    assert api.last.body == {"token": {"role": "member"}}
    assert "pw_abc" in result.stdout
    assert "cannot be shown again" in result.stderr


def test_token_create_sends_role_and_description(api, cli):
    api.reply("POST", "/v1/alpha/tokens", 201, {"token": {"id": "t", "secret": "s"}})
    result = cli(
        "token",
        "create",
        "--role",
        "reader",
        "--description",
        "ci",
        env={"PORTWAY_PROJECT": "alpha"},
    )
    assert result.exit_code == 0, result.stderr
    assert api.last.body == {"token": {"role": "reader", "description": "ci"}}


def test_token_flag_overrides_environment(api, cli):
    api.reply("GET", "/v1/projects", 200, {"projects": []})
    cli("project", "list", "--token", "other")
    assert api.last.headers["x-auth-token"] == "other"


def test_no_token_sends_no_auth_header(api, cli):
    api.reply("GET", "/v1/projects", 200, {"projects": []})
    cli("project", "list", env={"PORTWAY_TOKEN": None})
    assert "x-auth-token" not in api.last.headers
