"""One tier for the package (PostgreSQL pair and three nodes take some seconds to start;
it is gone before the rest of a suite runs): the modules run in the order of their names,
and the PostgreSQL failover comes last because it leaves the replica as the primary."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ha.netns import Net
from tests.ha.postgres import Postgres
from tests.ha.tier import CLIENT, Tier


@pytest.fixture(scope="package")
def tier() -> Iterator[Tier]:
    root = Path(tempfile.mkdtemp(prefix="portway-ha-"))
    root.chmod(0o755)  # PostgreSQL runs as its own user below it
    net = Net()
    built = Tier(net, root, Postgres(net, "pg1", root / "pg1"), Postgres(net, "pg2", root / "pg2"))
    try:
        built.build()
        yield built
    finally:
        built.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def in_client_namespace(tier: Tier) -> Iterator[None]:
    """Every test's sockets (and its threads') live in the client namespace."""
    with tier.net.entered(CLIENT):
        yield
