"""``portway serve --forwarded-for off`` end to end, through a data-plane worker process:
a proxy that inherits it sends no client address, one set to ``on`` does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.harness import (
    Backend,
    Portway,
    create_project_and_proxy,
    start_backend,
    wait_routed,
)


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = start_backend("b")
    yield b
    b.stop()


def test_the_node_default_off_and_a_proxy_that_turns_it_on(
    tmp_path: Path, backend: Backend
) -> None:
    pw = Portway(tmp_path / "data", workers=1, extra=["--forwarded-for", "off"])
    pw.start()
    try:
        create_project_and_proxy(pw, "alpha", "quiet.example.org", [backend.port])
        on = {"privacy": {"forwarded_for": "on"}}
        create_project_and_proxy(pw, "alpha", "loud.example.org", [backend.port], **on)
        spoof = {"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6"}
        wait_routed(pw, "quiet.example.org")
        pw.get("quiet.example.org", headers=spoof)
        quiet = backend.seen[-1]["headers"]
        assert {"x-forwarded-for", "forwarded", "x-real-ip"}.isdisjoint(quiet)
        assert quiet["x-forwarded-host"] == "quiet.example.org"
        wait_routed(pw, "loud.example.org")
        pw.get("loud.example.org", headers=spoof)
        loud = backend.seen[-1]["headers"]
        assert loud["x-forwarded-for"] == "127.0.0.1" and "x-real-ip" not in loud
    finally:
        pw.stop()
