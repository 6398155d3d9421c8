"""Active checks against real loopback servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Mapping

import trustme
from tests.conftest import TEST_POLICY

from portway.health.monitor import HealthMonitor, Target
from portway.health.state import DOWN, UP, Health
from portway.model import Backend, HealthCheck, Proxy
from portway.router import RouteTable, Snapshot


async def status_server(status: list[int]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status[0]} X\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def snapshot(check: HealthCheck, ports: list[int]) -> Snapshot:
    backends = tuple(Backend(id=f"b{i}", address="127.0.0.1", port=p) for i, p in enumerate(ports))
    proxy = Proxy(id="p", project="x", hostname="h.test", health_check=check, backends=backends)
    return Snapshot(version=1, routes=RouteTable.build([proxy]))


async def wait_for(monitor: HealthMonitor, target: Target, status: str) -> None:
    for _ in range(200):
        health = monitor.health.get(target)
        if health is not None and health.status == status:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{target} never became {status}: {monitor.health.get(target)}")


def test_http_check_marks_up_then_down_when_status_turns_bad() -> None:
    async def main() -> list[Mapping[Target, Health]]:
        status = [200]
        server = await status_server(status)
        port = server.sockets[0].getsockname()[1]
        pushed: list[Mapping[Target, Health]] = []
        monitor = HealthMonitor(pushed.append, backend_policy=TEST_POLICY)
        check = HealthCheck(interval=0.02, timeout=0.5, rise=2, fall=2, expected_codes="200")
        monitor.update(snapshot(check, [port, closed_port()]))
        await wait_for(monitor, ("p", "b0"), UP)
        await wait_for(monitor, ("p", "b1"), DOWN)
        assert "refused" in (monitor.health[("p", "b1")].last_error or "").lower()
        status[0] = 503
        await wait_for(monitor, ("p", "b0"), DOWN)
        assert monitor.health[("p", "b0")].last_error == "status 503"
        await monitor.close()
        server.close()
        return pushed

    pushed = asyncio.run(main())
    assert pushed and pushed[-1][("p", "b0")].status == DOWN


def test_tcp_check_only_connects() -> None:
    async def main() -> None:
        server = await status_server([500])
        port = server.sockets[0].getsockname()[1]
        monitor = HealthMonitor(lambda h: None, backend_policy=TEST_POLICY)
        monitor.update(snapshot(HealthCheck(type="tcp", interval=0.02, rise=1), [port]))
        await wait_for(monitor, ("p", "b0"), UP)
        await monitor.close()
        server.close()

    asyncio.run(main())


def test_removed_backend_is_forgotten() -> None:
    async def main() -> None:
        server = await status_server([200])
        port = server.sockets[0].getsockname()[1]
        monitor = HealthMonitor(lambda h: None, backend_policy=TEST_POLICY)
        check = HealthCheck(interval=0.02, rise=1)
        monitor.update(snapshot(check, [port, port]))
        await wait_for(monitor, ("p", "b1"), UP)
        monitor.update(snapshot(check, [port]))
        assert ("p", "b1") not in monitor.health
        await monitor.close()
        server.close()

    asyncio.run(main())


def test_incremental_update_touches_only_changed_proxies() -> None:
    async def main() -> None:
        server = await status_server([200])
        port = server.sockets[0].getsockname()[1]
        monitor = HealthMonitor(lambda h: None, backend_policy=TEST_POLICY)
        check = HealthCheck(interval=0.02, rise=1)
        first = snapshot(check, [port])
        monitor.update(first, None)
        await wait_for(monitor, ("p", "b0"), UP)
        task_before = monitor._tasks[("p", "b0")][0]
        other = Proxy(
            id="q",
            project="x",
            hostname="q.test",
            health_check=check,
            backends=(Backend(id="c0", address="127.0.0.1", port=port),),
        )
        both = Snapshot(version=2, routes=first.routes.with_changes(upserts=[other]))
        monitor.update(both, {"q"})
        await wait_for(monitor, ("q", "c0"), UP)
        assert monitor._tasks[("p", "b0")][0] is task_before  # untouched proxy kept its probe
        gone = Snapshot(version=3, routes=both.routes.with_changes(removed=["q"]))
        monitor.update(gone, {"q"})
        assert ("q", "c0") not in monitor.health and ("q", "c0") not in monitor._tasks
        await monitor.close()
        server.close()

    asyncio.run(main())


def test_a_fresh_table_is_probed_over_the_interval_and_reported_in_batches() -> None:
    """200 new checked backends: first probes spread over the interval (not all in the
    first instant), and their verdicts reach on_change in a few batched reports."""

    async def main() -> tuple[list[float], list[Mapping[Target, Health]]]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        seen: list[float] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            seen.append(loop.time() - started)
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pushed: list[Mapping[Target, Health]] = []
        monitor = HealthMonitor(pushed.append, backend_policy=TEST_POLICY)
        check = HealthCheck(type="tcp", interval=2.0, rise=1)
        monitor.update(snapshot(check, [port] * 200))
        while len(monitor.health) < 200 or any(h.status != UP for h in monitor.health.values()):
            assert loop.time() - started < 10, len(monitor.health)
            await asyncio.sleep(0.02)
        await monitor.close()
        server.close()
        return seen, pushed

    seen, pushed = asyncio.run(main())
    first = sorted(seen)[:200]
    assert first[-1] - first[0] > 1.2  # spread over the 2 s interval, not its first second
    assert len(pushed) <= 2.0 / 0.05 + 3  # batched: one report per window at most
    assert all(h.status == UP for h in pushed[-1].values()) and len(pushed[-1]) == 200


def test_an_http_check_of_a_tls_backend_is_made_over_tls() -> None:
    """The probe meets what traffic meets: a TLS backend answers only over TLS, and the
    same server marked plain is down (its answer to a plain request is no HTTP)."""
    leaf = trustme.CA().issue_cert("127.0.0.1")

    async def main() -> tuple[str, str, str | None]:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(context)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        backends = (
            Backend(id="tls", address="127.0.0.1", port=port, tls=True),
            Backend(id="plain", address="127.0.0.1", port=port),
        )
        check = HealthCheck(interval=0.02, timeout=0.5, rise=1, fall=1)
        proxy = Proxy(id="p", project="x", hostname="h.test", health_check=check, backends=backends)
        monitor = HealthMonitor(lambda h: None, backend_policy=TEST_POLICY)
        monitor.update(Snapshot(version=1, routes=RouteTable.build([proxy])))
        await wait_for(monitor, ("p", "tls"), UP)
        await wait_for(monitor, ("p", "plain"), DOWN)
        result = (
            monitor.health[("p", "tls")].status,
            monitor.health[("p", "plain")].status,
            monitor.health[("p", "plain")].last_error,
        )
        await monitor.close()
        server.close()
        return result

    tls, plain, why = asyncio.run(main())
    assert (tls, plain) == (UP, DOWN) and why
