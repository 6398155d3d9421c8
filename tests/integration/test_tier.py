"""Several ``portway serve`` nodes on one PostgreSQL: a write through any node's API
reaches every node's traffic, woken by the store's notification rather than its poll."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _fresh_pg_database
from tests.integration.harness import (
    VENV_BIN,
    Backend,
    Portway,
    create_project_and_proxy,
    running_tier,
    wait_routed,
)

pytestmark = pytest.mark.postgres


def make_key(path: Path) -> None:
    subprocess.run(
        [str(VENV_BIN / "portway"), "keys", "add", "--secret-key-file", str(path)],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def tier(tmp_path: Path, postgres_url: str) -> Iterator[list[Portway]]:
    url = _fresh_pg_database(postgres_url)
    key = tmp_path / "secret.key"
    make_key(key)
    nodes = [
        Portway(
            tmp_path / f"node-{name}",
            extra=[
                "--store",
                url,
                "--secret-key-file",
                str(key),
                "--node-name",
                name,
                "--node-report-interval",
                "0.2",
            ],
        )
        for name in ("a", "b")
    ]
    with running_tier(nodes):
        yield nodes


def test_a_write_through_one_node_is_routed_by_the_other_within_the_notification(
    tier: list[Portway], backends: list[Backend]
) -> None:
    backend = backends[0]
    a, b = tier
    took = []
    for i in range(20):
        host = f"p{i}.tier.test"
        create_project_and_proxy(a, "tier", host, [backend.port])
        took.append(wait_routed(b, host, timeout=10))
    # Polling alone (once a second) gives a median near half a second or more; the
    # notification wakes node B at once.
    assert statistics.median(took) < 0.25, sorted(took)
    assert max(took) < 1.0, sorted(took)
    for host in (f"p{i}.tier.test" for i in range(20)):
        assert b.get(host).json()["backend"] == backend.name


def nodes_of(pw: Portway) -> dict[str, dict[str, Any]]:
    r = pw.api("GET", "/v1/nodes")
    assert r.status_code == 200, r.text
    return {n["name"]: n for n in r.json()["nodes"]}


def wait_nodes(pw: Portway, check: Callable[[dict[str, dict[str, Any]]], bool]) -> dict:
    deadline = time.monotonic() + 10
    while True:
        nodes = nodes_of(pw)
        if check(nodes):
            return nodes
        assert time.monotonic() < deadline, nodes
        time.sleep(0.05)


def test_every_node_reports_the_same_revision_and_digest_and_a_stopped_one_is_lost(
    tier: list[Portway], backends: list[Backend]
) -> None:
    backend = backends[0]
    a, b = tier
    for i in range(3):
        create_project_and_proxy(b, "tier", f"d{i}.tier.test", [backend.port])
    revision = a.api("GET", "/v1/tier/changes").json()["changes"][0]["revision"]

    def in_step(nodes: dict[str, dict[str, Any]]) -> bool:
        return set(nodes) == {"a", "b"} and all(
            n["applied_revision"] == revision for n in nodes.values()
        )

    nodes = wait_nodes(a, in_step)
    assert nodes["a"]["digest"] == nodes["b"]["digest"] != ""
    assert nodes["a"]["addresses"] == [f"127.0.0.1:{a.http_port}", f"127.0.0.1:{a.https_port}"]
    assert not nodes["a"]["lost"] and not nodes["b"]["lost"]
    # The CLI shows the same table.
    out = subprocess.run(
        [str(VENV_BIN / "portway"), "node", "list"], env=a.env(), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[1:]}
    assert set(rows) == {"a", "b"}, out.stdout
    assert nodes["a"]["digest"] in rows["a"] and nodes["b"]["digest"] in rows["b"]
    # A proxy that changes the routes changes the digest, on both nodes alike.
    before = nodes["a"]["digest"]
    create_project_and_proxy(a, "tier", "d9.tier.test", [backend.port])
    nodes = wait_nodes(
        b, lambda n: n["a"]["digest"] == n["b"]["digest"] and n["a"]["digest"] != before
    )
    # Node B stops: node A shows it lost after three silent intervals.
    b.stop()
    nodes = wait_nodes(a, lambda n: n["b"]["lost"])
    assert not nodes["a"]["lost"]


def test_only_an_admin_lists_the_nodes(tier: list[Portway]) -> None:
    a = tier[0]
    a.api("POST", "/v1/projects", json={"project": {"name": "tenant"}})
    r = a.api("POST", "/v1/tenant/tokens", json={"token": {"role": "member"}})
    assert r.status_code == 201, r.text
    r = a.api("GET", "/v1/nodes", token=r.json()["token"]["secret"])
    assert r.status_code == 403
    assert r.json()["error"]["code"]
