"""One BIND for the DNS tests of a session; tests keep apart by owner and by name."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dns.bind import Bind, start_bind


@pytest.fixture(scope="session")
def bind() -> Iterator[Bind]:
    root = Path(tempfile.mkdtemp(prefix="portway-bind-"))
    try:
        server = start_bind(root)
        print(f"named started in {server.started_in:.2f} s")
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_bind(tmp_path: Path) -> Iterator[Bind]:
    """A BIND of the test's own, for tests that stop it."""
    server = start_bind(tmp_path / "bind")
    try:
        yield server
    finally:
        server.stop()
