"""The ``portway`` CLI against a real ``portway serve``: a tenant's whole workflow, and
errors as one readable line with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

from tests.integration.harness import VENV_BIN, Backend, Portway, wait_routed


def cli(pw: Portway, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VENV_BIN / "portway"), *args],
        env=pw.env(token),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_tenant_workflow_through_the_cli(portway: Portway, backends: list[Backend]) -> None:
    assert cli(portway, "project", "create", "alpha").returncode == 0
    made = cli(portway, "-p", "alpha", "-f", "json", "token", "create", "--role", "member")
    assert made.returncode == 0, made.stderr
    member = json.loads(made.stdout)["secret"]

    created = cli(
        portway,
        "-p",
        "alpha",
        "-f",
        "json",
        "proxy",
        "create",
        "cli.alpha.test",
        "--backend",
        f"127.0.0.1:{backends[0].port}",
        token=member,
    )
    assert created.returncode == 0, created.stderr
    added = cli(
        portway,
        "-p",
        "alpha",
        "backend",
        "add",
        "cli.alpha.test",
        f"127.0.0.1:{backends[1].port}",
        token=member,
    )
    assert added.returncode == 0, added.stderr
    wait_routed(portway, "cli.alpha.test")
    seen = Counter(portway.get("cli.alpha.test").json()["backend"] for _ in range(20))
    assert seen == {"b0": 10, "b1": 10}

    listed = cli(portway, "-p", "alpha", "proxy", "list", token=member)
    assert listed.returncode == 0 and "cli.alpha.test" in listed.stdout

    removed = cli(
        portway,
        "-p",
        "alpha",
        "backend",
        "remove",
        "cli.alpha.test",
        f"127.0.0.1:{backends[0].port}",
        token=member,
    )
    assert removed.returncode == 0, removed.stderr
    shown = cli(
        portway, "-p", "alpha", "-f", "json", "backend", "list", "cli.alpha.test", token=member
    )
    ports = [b["port"] for b in json.loads(shown.stdout)]
    assert ports == [backends[1].port]

    deleted = cli(portway, "-p", "alpha", "proxy", "delete", "cli.alpha.test", token=member)
    assert deleted.returncode == 0, deleted.stderr
    wait_routed(portway, "cli.alpha.test", status=404)


def test_cli_errors_are_one_line_and_non_zero(portway: Portway) -> None:
    cli(portway, "project", "create", "alpha")
    cli(portway, "project", "create", "beta")
    assert cli(portway, "-p", "alpha", "proxy", "create", "taken.test").returncode == 0
    conflict = cli(portway, "-p", "beta", "proxy", "create", "taken.test")
    assert conflict.returncode != 0
    assert conflict.stderr.strip().count("\n") == 0
    assert "409" in conflict.stderr and "taken.test" in conflict.stderr

    bad = cli(portway, "-p", "alpha", "proxy", "create", "not a host")
    assert bad.returncode != 0 and bad.stderr.strip().count("\n") == 0
    assert "hostname" in bad.stderr

    unauthorized = cli(portway, "-p", "alpha", "proxy", "list", token="wrong")
    assert unauthorized.returncode != 0 and "401" in unauthorized.stderr

    portway.stop()
    unreachable = cli(portway, "-p", "alpha", "proxy", "list")
    assert unreachable.returncode != 0
    assert unreachable.stderr.strip().count("\n") == 0
    assert "Traceback" not in unreachable.stderr
