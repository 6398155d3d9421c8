"""Several ``portway serve`` nodes on one PostgreSQL: a write through any node's API
reaches every node's traffic, woken by the store's notification rather than its poll."""

from __future__ import annotations

import statistics
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _fresh_pg_database
from tests.integration.harness import (
    VENV_BIN,
    Backend,
    Portway,
    create_project_and_proxy,
    start_backend,
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
            extra=["--store", url, "--secret-key-file", str(key)],
        )
        for name in ("a", "b")
    ]
    # The admin token is the store's: every node must accept the same one.
    nodes[1].admin_token = nodes[0].admin_token
    started: list[Portway] = []
    try:
        for node in nodes:
            node.start()
            started.append(node)
        yield nodes
    finally:
        for node in started:
            node.stop()


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = start_backend("tier")
    yield b
    b.stop()


def test_a_write_through_one_node_is_routed_by_the_other_within_the_notification(
    tier: list[Portway], backend: Backend
) -> None:
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
        assert b.get(host).json()["backend"] == "tier"
