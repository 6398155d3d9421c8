"""One real Keystone for the session (its start-up is the expensive part)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.auth.keystone_server import Keystone, start_keystone


@pytest.fixture(scope="session")
def keystone() -> Iterator[Keystone]:
    root = Path(tempfile.mkdtemp(prefix="portway-keystone-"))
    try:
        server = start_keystone(root)
        timings = ", ".join(f"{k} {v:.1f} s" for k, v in server.timings.items())
        print(f"keystone start-up: {timings}")
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
