"""The probe writer itself never sends a method, path or host outside its RFC grammar,
whatever the HealthCheck it is handed (the API and the snapshot builder refuse such
checks first; this is the last line)."""

from __future__ import annotations

import asyncio

import pytest
from tests.conftest import TEST_POLICY

from portway.errors import LocalProtocolError
from portway.health.probe import probe, probe_request
from portway.model import HealthCheck


def test_a_valid_check_is_written_as_is() -> None:
    check = HealthCheck(method="HEAD", path="/ready?x=%2F", host="status.example.org")
    assert probe_request(check, "ignored.example.org") == (
        b"HEAD /ready?x=%2F HTTP/1.1\r\nHost: status.example.org\r\n"
        b"User-Agent: portway-health-check\r\nConnection: close\r\n\r\n"
    )
    assert b"Host: app.example.org\r\n" in probe_request(HealthCheck(), "app.example.org")


@pytest.mark.parametrize(
    ("check", "part"),
    [
        (HealthCheck(method="GET / HTTP/1.1\r\nHost: x\r\n\r\nGET"), "method"),
        (HealthCheck(method=""), "method"),
        (HealthCheck(path="/\r\nX-Injected: yes"), "path"),
        (HealthCheck(path="/a b"), "path"),
        (HealthCheck(host="a.example.org\r\nX: y"), "host"),
    ],
)
def test_a_check_outside_the_grammar_is_refused(check: HealthCheck, part: str) -> None:
    with pytest.raises(LocalProtocolError, match=f"health_check.{part}"):
        probe_request(check, "app.example.org")


def test_a_refused_probe_never_connects() -> None:
    async def main() -> tuple[str | None, int]:
        connections = 0

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        check = HealthCheck(path="/\r\nX-Injected: yes", timeout=1)
        reason = await probe(
            "127.0.0.1", port, check, frozenset({200}), "app.example.org", TEST_POLICY
        )
        await asyncio.sleep(0.1)
        server.close()
        return reason, connections

    reason, connections = asyncio.run(main())
    assert reason is not None and "health_check.path" in reason
    assert connections == 0
