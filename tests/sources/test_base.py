"""The supervisor keeps every source running and reports their states."""

from __future__ import annotations

import asyncio

from portway.sources.base import DOWN, STARTING, UP, SourceSet


class Flaky:
    """Fails on its first run, then stays up."""

    def __init__(self) -> None:
        self.name = "flaky"
        self.state = STARTING
        self.outcomes: dict[str, int] = {}
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("boom")
        self.state = UP
        self.outcomes["applied"] = 3
        await asyncio.Event().wait()


class Steady:
    def __init__(self) -> None:
        self.name = "steady"
        self.state = STARTING
        self.outcomes: dict[str, int] = {}

    async def run(self) -> None:
        self.state = UP
        await asyncio.Event().wait()


def test_a_failing_source_is_restarted_and_the_others_keep_running() -> None:
    flaky, steady = Flaky(), Steady()

    async def scenario() -> None:
        sources = SourceSet([flaky, steady], restart_delay=0.05)
        sources.start()
        await asyncio.sleep(0.01)
        assert sources.states() == {"flaky": DOWN, "steady": UP}
        await asyncio.sleep(0.1)
        assert sources.states() == {"flaky": UP, "steady": UP}
        gauges = sources.gauges()
        assert list(gauges["portway_source_up"][1]) == [
            ({"source": "flaky"}, 1.0),
            ({"source": "steady"}, 1.0),
        ]
        events = list(gauges["portway_source_events_total"][1])
        assert events == [({"source": "flaky", "outcome": "applied"}, 3.0)]
        await sources.stop()

    asyncio.run(scenario())
    assert flaky.runs == 2
