"""Nothing is lost across restarts, and how fast events are applied: 1 000 events
(malformed ones mixed in) through a real ActiveMQ while (a) the consumer process is
killed with SIGKILL and started again, (b) the broker stops and starts."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from portway.sources.base import DOWN, UP
from tests.sources.activemq import Broker, Publisher
from tests.sources.openshift_consumer import count, read
from tests.sources.openshift_running import Running, settings_for
from tests.sources.spi_events import endpoint, ruby_yaml
from tests.sources.spi_stream import observed, stream

ROOT = Path(__file__).resolve().parents[2]


class Feed:
    """Publishes ``bodies`` in a thread, as the OpenShift broker would, riding out
    broker restarts."""

    def __init__(self, broker: Broker, destination: str, bodies: list[str]) -> None:
        self.done = threading.Event()
        self.errors: list[BaseException] = []
        self.resends = 0
        thread = threading.Thread(target=self._run, args=(broker, destination, bodies))
        thread.daemon = True
        thread.start()

    def _run(self, broker: Broker, destination: str, bodies: list[str]) -> None:
        try:
            with Publisher(broker.port) as publisher:
                for body in bodies:
                    publisher.send(destination, body)
                self.resends = publisher.resends
        except BaseException as exc:
            self.errors.append(exc)
        finally:
            self.done.set()

    def wait(self, timeout: float = 120.0) -> None:
        assert self.done.wait(timeout) and not self.errors, self.errors


def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.timeout(300)
def test_a_broker_restart_mid_stream_loses_nothing(
    activemq: Broker, queue: str, start: Callable[..., Running]
) -> None:
    bodies, expected, events = stream(1000, seed=7)
    running = start(settings_for(activemq.url(queue)))
    running.wait_state(UP)
    feed = Feed(activemq, queue, bodies)
    routes = running.routes
    until(lambda: len(routes.events) >= 300 or bool(feed.errors), 120, "300 events applied")
    activemq.stop()
    running.wait_state(DOWN, timeout=30)
    activemq.start()
    feed.wait()
    assert routes.wait(lambda: set(routes.events) >= events, timeout=90), (
        f"{len(events - set(routes.events))} events never applied"
    )
    assert observed(routes.apps) == expected
    assert running.source.outcomes["malformed"] >= 1
    activemq.wait_depth(queue, 0)


@pytest.fixture
def consumer(
    activemq: Broker, queue: str, tmp_path: Path
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    log = (tmp_path / "consumer.log").open("ab")

    def spawn() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.sources.openshift_consumer",
                activemq.url(queue),
                str(tmp_path / "routes.db"),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    yield spawn
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)
    log.close()


@pytest.mark.timeout(300)
def test_sigkill_of_the_consumer_mid_stream_loses_nothing(
    activemq: Broker, queue: str, tmp_path: Path, consumer: Callable[[], subprocess.Popen[bytes]]
) -> None:
    """Killed three times without warning while events flow; each time a new process
    takes over the same file. Whatever was committed but not acknowledged comes again,
    which changes nothing."""
    bodies, expected, events = stream(1000, seed=11)
    db = tmp_path / "routes.db"
    proc = consumer()
    feed = Feed(activemq, queue, bodies)
    for mark in (250, 500, 750):
        until(lambda mark=mark: count(db) >= mark, 180, f"{mark} events applied")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = consumer()
    feed.wait()

    def missing() -> int:
        return len(events - {event for _, event in read(db)[1]})

    until(lambda: missing() == 0, 90, "every event applied")
    assert missing() == 0
    apps, _ = read(db)
    assert observed(apps) == expected
    activemq.wait_depth(queue, 0)
    assert proc.poll() is None  # still consuming


@pytest.mark.timeout(300)
def test_throughput_and_latency_with_acks(
    activemq: Broker, queue: str, start: Callable[..., Running]
) -> None:
    """Sustained rate (a backlog drained, each event committed then acknowledged) and
    event → routed latency (published one by one at 50/s while the source keeps up)."""
    backlog = [ruby_yaml(endpoint(port=10000 + i, app_name="bulk")) for i in range(2000)]
    activemq.publish(queue, backlog)
    running = start(settings_for(activemq.url(queue)))
    routes = running.routes
    routes.wait(lambda: len(routes.events) >= len(backlog), timeout=300)
    span = routes.committed_at[-1] - routes.committed_at[0]
    rate = (len(backlog) - 1) / span

    sent: dict[int, float] = {}
    with Publisher(activemq.port) as publisher:
        for i in range(300):
            port = 30000 + i
            sent[port] = time.monotonic()
            publisher.send(queue, ruby_yaml(endpoint(port=port, app_name="live")))
            time.sleep(max(0.0, sent[port] + 0.02 - time.monotonic()))
    routes.wait(lambda: len(routes.events) >= len(backlog) + 300, timeout=120)
    latency = sorted(
        (at - sent[event.public_port]) * 1000  # type: ignore[union-attr]
        for event, at in zip(
            routes.events[len(backlog) :], routes.committed_at[len(backlog) :], strict=True
        )
    )
    p50, p99 = statistics.median(latency), latency[int(len(latency) * 0.99) - 1]
    print(
        f"\nOpenShift source: {rate:.0f} events/s sustained with acks; "
        f"event → routed latency p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    assert rate > 20, rate
    assert p99 < 5000, p99
    activemq.wait_depth(queue, 0)
