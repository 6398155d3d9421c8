"""The OpenShift source run as the control process runs it (its own event loop, in a
thread), with the settings the tests use: one-second heart-beats, quick back-off."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from concurrent.futures import Future
from typing import Any

from portway.runtime.config import parse_stomp_url
from portway.sources.openshift import OpenShiftSettings, OpenShiftSource
from tests.sources.openshift_memory import POLICY, MemoryOpenShiftRoutes


def settings_for(url: str, **extra: Any) -> OpenShiftSettings:
    parsed = parse_stomp_url(url, flag="url")
    assert parsed is not None
    values: dict[str, Any] = {
        "heartbeat": 1.0,
        "backoff": 0.1,
        "max_backoff": 1.0,
        "connect_timeout": 5.0,
        "client_id": f"portway-test-{uuid.uuid4().hex[:8]}",
    }
    return OpenShiftSettings(url=parsed, policy=POLICY, **(values | extra))


class Running:
    """The source on its own event loop in a thread, as the control process runs it."""

    def __init__(self, routes: MemoryOpenShiftRoutes, settings: OpenShiftSettings) -> None:
        self.routes = routes
        self.source = OpenShiftSource(routes, settings)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.task: Future[None] = asyncio.run_coroutine_threadsafe(self.source.run(), self.loop)

    def wait_state(self, state: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.source.state != state:
            if self.task.done():
                self.task.result()
            assert time.monotonic() < deadline, f"state {self.source.state}, not {state}"
            time.sleep(0.05)

    def wait_outcomes(self, timeout: float = 60.0, **counts: int) -> None:
        deadline = time.monotonic() + timeout
        while any(self.source.outcomes.get(k, 0) < n for k, n in counts.items()):
            assert time.monotonic() < deadline, f"outcomes {self.source.outcomes}, not {counts}"
            time.sleep(0.02)

    def stop(self) -> None:
        if not self.thread.is_alive():
            return

        async def cancel() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(cancel(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
