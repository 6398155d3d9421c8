"""The apply loop both drivers share: a burst is one round, a refusal keeps the last good
snapshot in force and is reported, and verdicts go onto the good snapshot meanwhile."""

from __future__ import annotations

import asyncio

from portway.drivers.apply_loop import ApplyLoop, Down
from portway.drivers.problems import Problem
from portway.errors import ConfigError
from portway.router import Snapshot


class Daemon:
    """A stand-in for nginx or HAProxy: records each round, refuses the versions named."""

    def __init__(self, refuse: frozenset[int] = frozenset()) -> None:
        self.rounds: list[tuple[int, Down]] = []
        self.refuse = refuse

    async def round(self, snapshot: Snapshot, down: Down) -> tuple[Problem, ...]:
        self.rounds.append((snapshot.version, down))
        if snapshot.version in self.refuse:
            raise ConfigError(f"refused snapshot {snapshot.version}")
        return (Problem("p", "health_check", "none", True),)


def test_a_burst_of_snapshots_is_one_round_of_the_latest() -> None:
    async def main() -> None:
        daemon = Daemon()
        loop = ApplyLoop(daemon.round, name="test", delay=lambda: 0.02)
        loop.start()
        for version in range(1, 51):
            loop.offer(Snapshot(version=version))
        assert await loop.wait_applied(50, timeout=5)
        assert daemon.rounds == [(50, frozenset())]
        assert [p.field for p in loop.problems] == ["health_check"]
        await loop.close()

    asyncio.run(main())


def test_a_refused_snapshot_keeps_the_good_one_and_verdicts_still_apply() -> None:
    async def main() -> None:
        daemon = Daemon(refuse=frozenset({2}))
        loop = ApplyLoop(daemon.round, name="test", delay=lambda: 0.0)
        loop.start()
        loop.offer(Snapshot(version=1))
        assert await loop.wait_applied(1, timeout=5)
        loop.offer(Snapshot(version=2))
        assert not await loop.wait_applied(2, timeout=5)
        assert (loop.applied_version, loop.refused_version, loop.refusals) == (1, 2, 1)
        assert loop.errors == ("refused snapshot 2",)
        loop.set_down(frozenset({("p", "b")}))  # rendered onto snapshot 1, the good one
        for _ in range(100):
            if len(daemon.rounds) == 3:
                break
            await asyncio.sleep(0.01)
        assert daemon.rounds[-1] == (1, frozenset({("p", "b")}))
        assert loop.errors == ("refused snapshot 2",)  # still refused: still said
        loop.offer(Snapshot(version=3))
        assert await loop.wait_applied(3, timeout=5)
        assert loop.errors == ()
        assert daemon.rounds[-1] == (3, frozenset({("p", "b")}))
        await loop.close()

    asyncio.run(main())


def test_settled_waits_for_the_latest_offer_and_answers_the_snapshot_in_force() -> None:
    """A purge acts on what serves once every snapshot offered before it is through."""

    async def main() -> None:
        daemon = Daemon(refuse=frozenset({3}))
        loop = ApplyLoop(daemon.round, name="test", delay=lambda: 0.05)
        loop.start()
        assert await loop.settled(timeout=1) is None  # nothing offered yet
        loop.offer(Snapshot(version=1))
        loop.offer(Snapshot(version=2))
        settled = await loop.settled(timeout=5)  # not answered before the round ran
        assert settled is not None and settled.version == 2 == loop.applied_version
        loop.offer(Snapshot(version=3))
        settled = await loop.settled(timeout=5)
        assert settled is not None and settled.version == 2  # 3 was refused
        await loop.close()

    asyncio.run(main())


def test_a_rerender_is_one_more_round_on_the_snapshot_in_force() -> None:
    async def main() -> None:
        daemon = Daemon()
        loop = ApplyLoop(daemon.round, name="test", delay=lambda: 0.0)
        loop.rerender()  # before anything applied: the first snapshot's round covers it
        loop.start()
        loop.offer(Snapshot(version=1))
        assert await loop.wait_applied(1, timeout=5)
        await asyncio.sleep(0.05)
        assert daemon.rounds == [(1, frozenset())]
        for _ in range(3):  # a burst (new ticket keys, say) is one round
            loop.rerender()
        for _ in range(100):
            if len(daemon.rounds) == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert daemon.rounds == [(1, frozenset()), (1, frozenset())]
        assert loop.applied_version == 1
        await loop.close()

    asyncio.run(main())
