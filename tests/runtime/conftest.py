"""A control loop on a background uvloop thread, as ``portway serve`` runs one: tests
drive the data plane handles from the test thread and measure how quickly the loop
answers while they do."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Future
from typing import Any, TypeVar

import pytest
import uvloop

T = TypeVar("T")


class ControlLoop:
    """An event loop in its own thread; everything touching the handles runs on it."""

    def __init__(self) -> None:
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return self.submit(coro).result(timeout=timeout)

    def run(self, fn: Callable[[], T], timeout: float = 30) -> T:
        """``fn()`` on the loop (the handles are not thread-safe)."""

        async def on_loop() -> T:
            return fn()

        return self.call(on_loop(), timeout)

    def latency(self, limit: float = 5.0) -> float:
        """Seconds the loop took to run a callback scheduled now; inf past ``limit``."""
        done = threading.Event()
        started = time.monotonic()
        self.loop.call_soon_threadsafe(done.set)
        if not done.wait(limit):
            return math.inf
        return time.monotonic() - started

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.run(predicate):
                return
            time.sleep(0.05)
        raise AssertionError("condition not met in time")

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()


@pytest.fixture
def control() -> Iterator[ControlLoop]:
    loop = ControlLoop()
    yield loop
    loop.stop()


# Real origin servers on loopback, the same ones the data-plane tests use.
from tests.dataplane.conftest import make_origin  # noqa: E402, F401
