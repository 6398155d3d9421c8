"""Change heard → applied everywhere, timed per published snapshot from its oldest change."""

from __future__ import annotations

from portway.observability.metrics import BUCKETS, histogram_lines
from portway.observability.propagation import Propagation


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_snapshot_is_timed_from_its_oldest_change_when_it_is_applied() -> None:
    clock = Clock()
    p = Propagation(clock)
    p.published(5, heard_at=99.9921875)  # 7.8 ms before it is applied
    p.published(6, heard_at=99.75)
    p.published(7, heard_at=None)  # start-up: nothing this node heard of
    clock.now = 100.0
    p.applied(5)
    clock.now = 101.0
    p.applied(9)  # 6 skipped over by a merged plan: timed when a newer version lands
    assert p.row[-1] == 0.0078125 + 1.25
    assert sum(p.row[:-1]) == 2
    assert p.row[BUCKETS.index(0.01)] == 1  # 7.8 ms
    assert p.row[BUCKETS.index(2.5)] == 1
    lines = histogram_lines("x", p.row)
    assert lines[-1] == "x_count 2"
    p.applied(9)
    assert sum(p.row[:-1]) == 2  # nothing is timed twice
