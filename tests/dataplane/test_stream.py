"""tcp and tls-passthrough proxies over real loopback sockets: bytes relayed both ways,
balancing, a failed backend skipped, limits, idle timeout, PROXY v2, the backend's own
certificate reaching the client, and 1 000 connections at once."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from portway.health.state import DOWN
from portway.model import Backend, HealthCheck, Proxy, StreamSettings, Timeouts
from portway.protocol.proxy_v2 import header
from tests.active_checks import ActiveChecks
from tests.dataplane.conftest import FAST, ProxyRunner, proxy_for
from tests.dataplane.echo import EchoServer
from tests.dataplane.test_listeners import free_ports, policy_for, refused


@pytest.fixture
def make_echo() -> Iterator[Callable[..., EchoServer]]:
    servers: list[EchoServer] = []

    def make(name: str, **kw: object) -> EchoServer:
        server = EchoServer(name, **kw)  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def tcp_proxy(port: int, *echoes: EchoServer, **kw: object) -> Proxy:
    base = proxy_for("db.example.org", *(e.backend() for e in echoes), pid=f"tcp{port}")
    return dataclasses.replace(base, listen_port=port, protocol="tcp", **kw)  # type: ignore[arg-type]


def ask(port: int, line: bytes = b"hello\n", *, sock: socket.socket | None = None) -> bytes:
    own = sock is None
    sock = sock or socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        sock.sendall(line)
        data = b""
        while not data.endswith(b"\n"):
            part = sock.recv(65536)
            if not part:
                break
            data += part
        return data
    finally:
        if own:
            sock.close()


def closed_soon(sock: socket.socket, within: float = 3.0) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_tcp_proxy_relays_a_line_protocol_and_counts_the_bytes(
    make_proxy: Callable[..., ProxyRunner], make_echo: Callable[..., EchoServer]
) -> None:
    echo = make_echo("e1")
    (port,) = free_ports(1)
    runner = make_proxy(listen_policy=policy_for(port))
    runner.route(tcp_proxy(port, echo))
    assert ask(port, b"ping\n") == b"e1:ping\n"
    time.sleep(0.1)  # the close reaches the data plane
    relayed = runner.on_loop(lambda: dict(runner.dp.metrics.relayed))
    label = f"db.example.org:{port}/"
    assert relayed[("p", label, "connections")] == 1
    assert relayed[("p", label, "bytes_in")] == 5
    assert relayed[("p", label, "bytes_out")] == 8


def test_round_robin_over_backends_and_a_dead_one_is_skipped(
    make_proxy: Callable[..., ProxyRunner], make_echo: Callable[..., EchoServer]
) -> None:
    one, two = make_echo("e1"), make_echo("e2")
    (port, dead) = free_ports(2)
    gone = dataclasses.replace(one.backend(), id="dead", port=dead)
    runner = make_proxy(listen_policy=policy_for(port))
    runner.route(
        dataclasses.replace(
            tcp_proxy(port, one, two), backends=(one.backend(), two.backend(), gone)
        )
    )
    answers = [ask(port) for _ in range(9)]
    assert {a.split(b":")[0] for a in answers} == {b"e1", b"e2"}  # every one answered


def test_proxy_protocol_v2_tells_the_backend_who_connected(
    make_proxy: Callable[..., ProxyRunner], make_echo: Callable[..., EchoServer]
) -> None:
    echo = make_echo("e1")
    (port,) = free_ports(1)
    runner = make_proxy(listen_policy=policy_for(port))
    runner.route(tcp_proxy(port, echo, stream=StreamSettings(proxy_protocol=True)))
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        assert ask(port, sock=sock) == b"e1:hello\n"
        mine = sock.getsockname()
    assert echo.preludes[-1] == header((mine[0], mine[1]), ("127.0.0.1", port))


def test_the_proxys_connection_limit_closes_the_one_too_many(
    make_proxy: Callable[..., ProxyRunner], make_echo: Callable[..., EchoServer]
) -> None:
    echo = make_echo("e1")
    (port,) = free_ports(1)
    runner = make_proxy(listen_policy=policy_for(port))
    runner.route(tcp_proxy(port, echo, stream=StreamSettings(max_connections=1)))
    first = socket.create_connection(("127.0.0.1", port), timeout=3)
    assert ask(port, sock=first) == b"e1:hello\n"
    second = socket.create_connection(("127.0.0.1", port), timeout=3)
    assert closed_soon(second)
    first.close()
    time.sleep(0.1)
    assert ask(port) == b"e1:hello\n"  # room again once the first one ended
    second.close()


def test_an_idle_relay_is_closed(
    make_proxy: Callable[..., ProxyRunner], make_echo: Callable[..., EchoServer]
) -> None:
    echo = make_echo("e1")
    (port,) = free_ports(1)
    runner = make_proxy(listen_policy=policy_for(port))
    runner.route(tcp_proxy(port, echo, timeouts=Timeouts(idle=0.3)))
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        assert ask(port, sock=sock) == b"e1:hello\n"
        started = time.monotonic()
        assert closed_soon(sock)
        assert 0.2 < time.monotonic() - started < 2.0


def test_no_live_backend_closes_the_client(make_proxy: Callable[..., ProxyRunner]) -> None:
    port, dead = free_ports(2)
    runner = make_proxy(listen_policy=policy_for(port))
    dead_backend = Backend(id="d", address="127.0.0.1", port=dead)
    base = proxy_for("db.example.org", dead_backend, pid="x")
    runner.route(dataclasses.replace(base, listen_port=port, protocol="tcp"))
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        assert closed_soon(sock)


def test_a_thousand_concurrent_relayed_connections(
    make_proxy: Callable[..., ProxyRunner], make_echo: Callable[..., EchoServer]
) -> None:
    echoes = [make_echo(f"e{i}") for i in range(2)]
    (port,) = free_ports(1)
    # FAST's 1 s read timeout caps the relay's idle time: held connections need longer.
    runner = make_proxy(
        dataclasses.replace(FAST, read_timeout=30.0), listen_policy=policy_for(port)
    )
    runner.route(tcp_proxy(port, *echoes, algorithm="least_conn"))

    async def one(i: int) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"line %d\n" % i)
        got = await reader.readline()
        await held.wait()  # all 1 000 open at once before any closes
        writer.close()
        return got

    async def run() -> list[bytes]:
        tasks = [asyncio.create_task(one(i)) for i in range(1000)]
        while runner.on_loop(lambda: len(runner.dp.streams)) < 1000:
            await asyncio.sleep(0.05)
        held.set()
        return await asyncio.gather(*tasks)

    held = asyncio.Event()
    answers = asyncio.run(asyncio.wait_for(run(), 60))
    assert all(a.endswith(b"line %d\n" % i) for i, a in enumerate(answers))
    assert sum(e.connections for e in echoes) == 1000
    assert min(e.connections for e in echoes) > 300  # least_conn spread them


# -- tls-passthrough ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_tls_passthrough_routes_by_sni_and_the_backends_own_certificate_reaches_the_client(
    make_proxy: Callable[..., ProxyRunner], make_echo: Callable[..., EchoServer], ca: trustme.CA
) -> None:
    (port,) = free_ports(1)
    by_sni(make_proxy(listen_policy=policy_for(port)), port, make_echo, ca)


def by_sni(runner: Any, port: int, make_echo: Callable[..., EchoServer], ca: trustme.CA) -> None:
    """Two TLS echo servers behind passthrough ``port`` of ``runner`` (any plane): each
    name reaches its own, whose certificate the client verifies (tests/conformance too)."""
    servers = {}
    for name in ("secure.example.org", "other.example.org"):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(name).configure_cert(ctx)
        servers[name] = make_echo(name.split(".")[0], tls=ctx)
    runner.route(
        *(
            dataclasses.replace(
                proxy_for(name, echo.backend(), pid=name),
                listen_port=port,
                protocol="tls-passthrough",
            )
            for name, echo in servers.items()
        )
    )
    client = ssl.create_default_context()
    ca.configure_trust(client)  # verifies the chain and the name: the backend's certificate
    for name in servers:
        with client.wrap_socket(
            socket.create_connection(("127.0.0.1", port), timeout=3), server_hostname=name
        ) as tls:
            cert = tls.getpeercert()
            assert ("DNS", name) in cert["subjectAltName"]
            assert ask(port, sock=tls) == name.split(".")[0].encode() + b":hello\n"
    assert all(e.connections == 1 for e in servers.values())


def passthrough(
    make_proxy: Callable[..., ProxyRunner], make_echo: Callable[..., EchoServer]
) -> tuple[EchoServer, ProxyRunner, int]:
    """A passthrough port routing secure.example.org to a plain echo server (whatever
    reaches it was relayed)."""
    echo = make_echo("e1")
    (port,) = free_ports(1)
    runner = make_proxy(listen_policy=policy_for(port))
    base = proxy_for("secure.example.org", echo.backend())
    runner.route(dataclasses.replace(base, listen_port=port, protocol="tls-passthrough"))
    return echo, runner, port


@pytest.mark.parametrize(
    "first",
    [
        b"GET / HTTP/1.1\r\nHost: secure.example.org\r\n\r\n",
        b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00",
    ],
)
def test_tls_passthrough_closes_what_is_not_a_client_hello(
    make_proxy: Callable[..., ProxyRunner], make_echo: Callable[..., EchoServer], first: bytes
) -> None:
    echo, _, port = passthrough(make_proxy, make_echo)
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(first)
        assert closed_soon(sock)
    assert echo.connections == 0  # nothing was relayed


def test_tls_passthrough_closes_an_unknown_server_name(
    make_proxy: Callable[..., ProxyRunner], make_echo: Callable[..., EchoServer], ca: trustme.CA
) -> None:
    echo, runner, port = passthrough(make_proxy, make_echo)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        client.wrap_socket(
            socket.create_connection(("127.0.0.1", port), timeout=3),
            server_hostname="nobody.example.org",
        )
    assert echo.connections == 0
    runner.route()
    assert refused(port)


def test_a_client_that_sends_and_shuts_its_side_still_gets_the_answer(
    make_proxy: Callable[..., ProxyRunner], make_echo: Callable[..., EchoServer]
) -> None:
    echo = make_echo("e1")
    (port,) = free_ports(1)
    runner = make_proxy(listen_policy=policy_for(port))
    runner.route(tcp_proxy(port, echo))
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(b"bye\n")
        sock.shutdown(socket.SHUT_WR)  # as nc -N: the request, then EOF at once
        data = b""
        while part := sock.recv(65536):
            data += part
    assert data == b"e1:bye\n"  # and then the relay ended (EOF both ways)


def test_an_active_tcp_check_holds_a_backend_that_never_accepts_out_of_a_tcp_proxy(
    make_proxy: Callable[..., ProxyRunner],
    make_echo: Callable[..., EchoServer],
    silent_port: int,
) -> None:
    """A connect to a backend whose SYNs are dropped waits out the connect timeout before
    the retry on another; once Portway's TCP check has declared it down, none waits."""
    echo = make_echo("e1")
    (port,) = free_ports(1)
    runner = make_proxy(listen_policy=policy_for(port))
    silent = Backend(id="silent", address="127.0.0.1", port=silent_port)
    check = HealthCheck(type="tcp", interval=0.2, timeout=0.2, rise=1, fall=1)
    proxy = dataclasses.replace(
        tcp_proxy(port, echo),
        backends=(echo.backend(), silent),
        health_check=check,
        timeouts=Timeouts(connect=0.4),
    )
    snapshot = runner.snapshot([proxy])
    assert runner.apply(snapshot)
    waited = []
    for _ in range(4):  # round robin: about half of these try the silent one first
        started = time.monotonic()
        assert ask(port) == b"e1:hello\n"
        waited.append(time.monotonic() - started)
    assert max(waited) >= 0.4, waited  # without the check, a connection waits on it
    checks = ActiveChecks(runner.call, runner.dp.set_health)
    try:
        checks.update(snapshot)
        target = (proxy.id, "silent")
        deadline = time.monotonic() + 5
        while not runner.on_loop(lambda: target in runner.dp.plans.down):
            assert time.monotonic() < deadline, "the TCP check's verdict never reached the plane"
            time.sleep(0.05)
        assert checks.monitor.health[target].status == DOWN
        for _ in range(10):
            started = time.monotonic()
            assert ask(port) == b"e1:hello\n"
            assert time.monotonic() - started < 0.3, "a connection waited on the silent one"
    finally:
        checks.close()


def test_a_connect_timeout_longer_than_the_idle_timeout_still_retries_on_another(
    make_proxy: Callable[..., ProxyRunner],
    make_echo: Callable[..., EchoServer],
    silent_port: int,
) -> None:
    """The idle timeout counts from when bytes can flow: a connect that times out is
    retried on another backend even when it took longer than the idle timeout."""
    echo = make_echo("e1")
    (port,) = free_ports(1)
    # The connection's timer first fires at the client header timeout (0.5 s), while
    # the connect to the silent backend (1.2 s) is still under way.
    settings = dataclasses.replace(FAST, connect_timeout=1.5, client_header_timeout=0.5)
    runner = make_proxy(settings, listen_policy=policy_for(port))
    silent = Backend(id="silent", address="127.0.0.1", port=silent_port)
    proxy = dataclasses.replace(
        tcp_proxy(port, echo),
        backends=(silent, echo.backend()),
        timeouts=Timeouts(connect=1.2, idle=0.3),
    )
    runner.route(proxy)
    assert [ask(port) for _ in range(4)] == [b"e1:hello\n"] * 4
