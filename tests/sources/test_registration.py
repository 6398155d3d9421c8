"""The 8282 listener against real identities: oidentd on loopback, clients running as
real Unix users. The registrar here is an in-memory implementation of the listener's
seam; the service-backed one is tested through ``portway serve``."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import pytest

from portway.errors import ValidationError
from portway.router.patterns import compile_pattern
from portway.sources.registration import ListenerSettings, RegistrationListener
from tests.sources.conftest import run_client_as
from tests.sources.memory import MemoryRegistrar
from tests.sources.registration_client import send


class Running:
    def __init__(self, settings: ListenerSettings) -> None:
        self.registrar = MemoryRegistrar()
        self.listener = RegistrationListener(self.registrar, settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self.call(self.listener.serve("127.0.0.1", 0))
        self.port = self.server.sockets[0].getsockname()[1]

    def call(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout=30)

    def stop(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def running(identd_port: int, unix_users: tuple[str, ...]) -> Iterator[Running]:
    settings = ListenerSettings(ident_port=identd_port, idle_timeout=1.0, max_connections=8)
    run = Running(settings)
    yield run
    run.stop()


def test_a_tool_registers_canonically_as_the_real_client_does(running: Running) -> None:
    reply = run_client_as(
        "tools.alpha", running.port, r"registerCanonical\n.*\nhttp://10.0.0.9:4242\n"
    )
    assert reply == "ok"
    assert running.registrar.routes == {"alpha": {".*": "http://10.0.0.9:4242"}}
    assert running.registrar.canonical == {"alpha"}
    assert running.listener.outcomes == {"applied": 1}


def test_unregister_removes_only_the_callers_route(running: Running) -> None:
    assert run_client_as("tools.alpha", running.port, r"register\n.*\nhttp://10.0.0.9:1\n") == "ok"
    assert run_client_as("tools.beta", running.port, r"register\n.*\nhttp://10.0.0.9:2\n") == "ok"
    assert run_client_as("tools.beta", running.port, r"unregister\n.*\n") == "ok"
    assert running.registrar.routes == {"alpha": {".*": "http://10.0.0.9:1"}, "beta": {}}


def test_a_user_that_is_not_a_tool_gets_one_explanatory_line(running: Running) -> None:
    reply = run_client_as("notatool", running.port, r"register\n.*\nhttp://10.0.0.9:1\n")
    assert reply.startswith("fail: ") and "notatool" in reply and reply.endswith("\n")
    assert running.registrar.routes == {}
    assert running.listener.outcomes == {"unidentified": 1}


def test_root_is_not_a_tool_either(running: Running) -> None:
    assert send(running.port, b"register\n.*\nhttp://10.0.0.9:1\n").startswith(b"fail: ")
    assert running.registrar.routes == {}


@pytest.mark.parametrize(
    "payload",
    [
        r"hello\n",
        r"register\n(a)\\1\nhttp://10.0.0.9:1\n",  # a back-reference: RE2 refuses it
        r"register\n.*\nftp://10.0.0.9:1\n",
        r"register\n.*\nhttp://10.0.0.9:1/x\n",
    ],
)
def test_bad_requests_get_exactly_fail(running: Running, payload: str) -> None:
    assert run_client_as("tools.alpha", running.port, payload) == "fail"
    assert running.registrar.routes.get("alpha", {}) == {}


def test_an_overlong_line_gets_fail_without_waiting_for_its_end(running: Running) -> None:
    with socket.create_connection(("127.0.0.1", running.port)) as sock:
        sock.sendall(b"register\n" + b"a" * 5000)
        sock.settimeout(5)
        assert sock.recv(1024) == b"fail"
        assert sock.recv(1024) == b""  # then the server closes


def test_a_silent_client_gets_fail_after_the_idle_timeout(running: Running) -> None:
    with socket.create_connection(("127.0.0.1", running.port)) as sock:
        start = time.monotonic()
        sock.settimeout(5)
        assert sock.recv(1024) == b"fail"
        assert 0.9 <= time.monotonic() - start < 3


def test_connections_over_the_limit_get_fail_at_once(running: Running) -> None:
    idle = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(8)]
    try:
        time.sleep(0.2)  # let the listener accept them
        with socket.create_connection(("127.0.0.1", running.port)) as extra:
            extra.settimeout(0.5)
            assert extra.recv(1024) == b"fail"
    finally:
        for sock in idle:
            sock.close()


def test_a_token_line_identifies_a_tool_without_identd(running: Running) -> None:
    reply = run_client_as(
        "notatool", running.port, r"token gamma-secret\nregister\n.*\nhttp://10.0.0.9:3\n"
    )
    assert reply == "ok"
    assert running.registrar.routes == {"gamma": {".*": "http://10.0.0.9:3"}}
    bad = run_client_as("notatool", running.port, r"token wrong\nregister\n.*\nhttp://10.0.0.9:3\n")
    assert bad.startswith("fail: ")


def test_identd_being_down_is_a_refusal_not_a_crash(unix_users: tuple[str, ...]) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead_port = unused.getsockname()[1]
    run = Running(ListenerSettings(ident_port=dead_port, ident_timeout=1.0))
    try:
        reply = run_client_as("tools.alpha", run.port, r"register\n.*\nhttp://10.0.0.9:1\n")
        assert reply.startswith("fail: ") and "identd" in reply
        assert run.registrar.routes == {}
    finally:
        run.stop()


def test_validation_errors_are_portway_errors() -> None:
    # The registrar's refusals arrive as PortwayError subclasses; the listener maps them.
    with pytest.raises(ValidationError):
        compile_pattern("(")
