"""The passive outlier detector, with a hand-driven clock."""

from __future__ import annotations

from portway.health.passive import OutlierDetector

KEY = ("proxy", "backend")


def test_threshold_consecutive_failures_eject() -> None:
    d = OutlierDetector(threshold=3, backoff=10.0)
    assert not d.failure(KEY, 0.0)
    assert not d.failure(KEY, 0.0)
    assert d.failure(KEY, 0.0)
    assert d.ejected() == {KEY}


def test_a_success_resets_the_failure_count() -> None:
    d = OutlierDetector(threshold=2)
    d.failure(KEY, 0.0)
    d.success(KEY)
    assert not d.failure(KEY, 0.0)
    assert not d.watching or d.ejected() == frozenset()


def test_backoff_doubles_on_repeated_ejections_up_to_the_cap_and_resets_on_success() -> None:
    d = OutlierDetector(threshold=1, backoff=10.0, max_backoff=25.0)
    ends = []
    now = 0.0
    for _ in range(3):
        d.failure(KEY, now)
        ends.append(d.next_expiry - now)
        now = d.next_expiry
        assert d.expire(now)
    assert ends == [10.0, 20.0, 25.0]
    d.success(KEY)
    d.failure(KEY, now)
    assert d.next_expiry - now == 10.0


def test_expire_before_the_end_changes_nothing() -> None:
    d = OutlierDetector(threshold=1, backoff=10.0)
    d.failure(KEY, 0.0)
    assert not d.expire(9.9)
    assert d.is_ejected(KEY)
    assert d.expire(10.0)
    assert not d.is_ejected(KEY)
