"""/list builds a changed snapshot's body ahead of the next poll while pollers are around
(issue 9 §4: a poll right after a change must not wait for 10 000 entries)."""

from __future__ import annotations

import asyncio

from portway.router import RouteTable, Snapshot
from portway.sources.tool_list import ToolList


def snapshot(version: int) -> Snapshot:
    return Snapshot(version=version, routes=RouteTable.build([]))


def test_a_changed_snapshot_is_built_before_the_next_poll_only_while_polled() -> None:
    async def main() -> None:
        current = [snapshot(1)]
        polled = ToolList(lambda: current[0], "toolforge.test", port=0, refresh=0.02)
        idle = ToolList(lambda: current[0], "toolforge.test", port=0, refresh=0.02)
        tasks = [asyncio.create_task(polled.run()), asyncio.create_task(idle.run())]
        await asyncio.sleep(0.05)
        polled.response()
        assert polled.builds == 1
        current[0] = snapshot(2)
        await asyncio.sleep(0.1)
        assert polled.builds == 2  # built ahead, by the refresher
        polled.response()
        assert polled.builds == 2  # the poll found it ready
        assert idle.builds == 0  # nobody polls it: nothing is built in the background
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())
