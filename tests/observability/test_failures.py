"""A task retried through an outage logs its start and its end, not every attempt."""

from __future__ import annotations

import logging
import threading

import pytest
import sqlalchemy as sa

from portway.errors import StoreError
from portway.observability.failures import Outage
from portway.store.changefeed import Watcher


def test_an_outage_is_one_line_and_its_end_another(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("portway.test.outage")
    outage = Outage(log, "the task")
    with caplog.at_level(logging.INFO, logger=log.name):
        outage.worked()  # working all along: nothing to say
        for _ in range(50):
            outage.failed(StoreError("the configuration store is unavailable"))
        assert outage.failing
        outage.worked()
        outage.worked()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "the task failed: the configuration store is unavailable; retrying, "
        "and logging again only when it works",
        "the task works again after 50 failed attempts",
    ]
    # Portway's own errors are for the operator; no traceback.
    assert not caplog.records[0].exc_info


def test_an_unexpected_error_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("portway.test.outage2")
    with caplog.at_level(logging.WARNING, logger=log.name):
        try:
            raise KeyError("bug")
        except KeyError as exc:
            Outage(log, "the task").failed(exc)
    assert caplog.records[0].exc_info is not None
    assert caplog.records[0].exc_info[0] is KeyError


def test_the_store_watcher_logs_an_outage_once(caplog: pytest.LogCaptureFixture) -> None:
    """The watcher polls every interval; twenty failed polls are one warning."""
    calls = 0
    recovered = threading.Event()

    def current() -> int:
        nonlocal calls
        calls += 1
        if calls <= 20:
            raise StoreError("the configuration store is unavailable; try again later")
        recovered.set()
        return 7

    seen: list[int] = []
    engine = sa.create_engine("sqlite://")
    with caplog.at_level(logging.INFO, logger="portway.store.changefeed"):
        watcher = Watcher(engine, current, seen.append, poll_interval=0.005)
        try:
            assert recovered.wait(10), "the watcher never polled again"
            for _ in range(200):
                if seen:
                    break
                threading.Event().wait(0.01)
        finally:
            watcher.stop()
    assert seen[:1] == [7]
    messages = [r.getMessage() for r in caplog.records if r.name == "portway.store.changefeed"]
    assert messages == [
        "store watcher failed: the configuration store is unavailable; try again later; "
        "retrying, and logging again only when it works",
        "store watcher works again after 20 failed attempts",
    ]
