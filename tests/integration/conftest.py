"""Whole-system fixtures: ``portway serve`` as a subprocess, real backend HTTP servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import Backend, Portway, start_backend


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    started = [start_backend(f"b{i}") for i in range(3)]
    yield started
    for b in started:
        b.stop()


@pytest.fixture
def portway(tmp_path: Path) -> Iterator[Portway]:
    pw = Portway(tmp_path / "data")
    pw.start()
    yield pw
    pw.stop()
