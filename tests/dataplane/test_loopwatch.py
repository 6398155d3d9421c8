"""The loop watchdog behind the autouse ``loop_never_blocks`` fixture catches what it must."""

from __future__ import annotations

import time

import pytest

from tests.dataplane.conftest import H_APP, ProxyRunner, check_watches, raw, status_of
from tests.dataplane.loopwatch import CPU_LIMIT, SLEEP_LIMIT


def settle() -> None:
    time.sleep(0.05)  # the sampler reports within a few samples of the end


def test_a_sleep_on_the_loop_is_caught_with_its_stack(proxy: ProxyRunner) -> None:
    def nap() -> None:  # until the watch reports it, at most 2 s (see the next test)
        started = time.monotonic()
        while not proxy.watch.blocks and time.monotonic() - started < 2.0:
            time.sleep(SLEEP_LIMIT * 10)

    proxy.on_loop(nap)
    settle()
    blocks, proxy.watch.blocks[:] = list(proxy.watch.blocks), []  # keep the test green
    assert [b.kind for b in blocks] == ["sleep"]
    assert "nap" in blocks[0].stack and "sleep" in blocks[0].stack


def test_a_long_computation_on_the_loop_is_caught(proxy: ProxyRunner) -> None:
    # Spin until the watch reports it (at most 2 s of CPU): the sampler needs the GIL to
    # look, so under load its first sighting can come late; what it reports is a bound.
    def spin() -> None:
        started = time.thread_time()
        while not proxy.watch.blocks and time.thread_time() - started < 2.0:
            pass

    proxy.on_loop(spin)
    settle()
    blocks, proxy.watch.blocks[:] = list(proxy.watch.blocks), []
    assert [b.kind for b in blocks] == ["cpu"]
    assert "spin" in blocks[0].stack
    # ... and what the autouse fixture does with it:
    proxy.watch.blocks.extend(blocks)
    try:
        with pytest.raises(pytest.fail.Exception, match="event loop held by one callback"):
            check_watches([proxy.watch])
    finally:
        proxy.watch.blocks.clear()


def test_many_short_callbacks_are_not_a_block(proxy: ProxyRunner) -> None:
    # Short callbacks back to back for longer than the limit: the loop is busy, never held.
    def tick(left: int) -> None:
        started = time.thread_time()
        while time.thread_time() - started < 0.0002:
            pass
        if left:
            proxy.loop.call_soon(tick, left - 1)

    proxy.on_loop(lambda: tick(int(CPU_LIMIT * 3 / 0.0002)))
    for _ in range(20):
        data, _ = raw(proxy.port, b"GET / HTTP/1.1\r\n" + H_APP + b"Connection: close\r\n\r\n")
        assert status_of(data) == 200
    settle()
    assert proxy.watch.blocks == []
    assert proxy.watch.worst["cpu"] < CPU_LIMIT
