"""The passive outlier detector, with a hand-driven clock."""

from __future__ import annotations

import pytest

from portway.health.passive import Outcome, OutlierDetector, Verdict, may_eject, verdict

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


# -- what counts ------------------------------------------------------------

FAILURE, SUCCESS, NEITHER = Verdict.FAILURE, Verdict.SUCCESS, Verdict.NEITHER


@pytest.mark.parametrize(
    ("outcome", "status", "sent", "unsent"),
    [
        (Outcome.CONNECT_FAILED, 0, FAILURE, FAILURE),
        (Outcome.BAD_RESPONSE, 0, FAILURE, FAILURE),
        (Outcome.NO_ANSWER, 0, FAILURE, NEITHER),
        (Outcome.TIMED_OUT, 0, FAILURE, NEITHER),
        (Outcome.ANSWERED, 500, FAILURE, NEITHER),
        (Outcome.ANSWERED, 502, FAILURE, NEITHER),
        (Outcome.ANSWERED, 504, FAILURE, NEITHER),
        (Outcome.ANSWERED, 200, SUCCESS, SUCCESS),
        (Outcome.ANSWERED, 400, SUCCESS, SUCCESS),
        (Outcome.ANSWERED, 408, SUCCESS, SUCCESS),
        (Outcome.ANSWERED, 101, SUCCESS, SUCCESS),
    ],
)
def test_only_what_the_backend_did_counts_against_it(
    outcome: Outcome, status: int, sent: Verdict, unsent: Verdict
) -> None:
    assert verdict(outcome, request_sent=True, status=status) is sent
    assert verdict(outcome, request_sent=False, status=status) is unsent


# -- the bound ------------------------------------------------------------


def test_a_lone_backend_is_never_ejected_whatever_the_percent() -> None:
    assert not may_eject(backends=1, ejected=0, others_left=0, max_percent=100)


@pytest.mark.parametrize(
    ("backends", "percent", "most"),
    [(2, 50, 1), (3, 50, 1), (4, 50, 2), (10, 10, 1), (10, 50, 5), (4, 100, 3), (9, 10, 0)],
)
def test_ejections_stop_at_the_percent_and_before_the_last_backend(
    backends: int, percent: int, most: int
) -> None:
    ejected = 0
    while may_eject(
        backends=backends, ejected=ejected, others_left=backends - ejected - 1, max_percent=percent
    ):
        ejected += 1
    assert ejected == most


def test_no_other_healthy_backend_of_the_tier_means_no_ejection() -> None:
    # Ten backends, the rest of the tier down by active checks: this one stays.
    assert not may_eject(backends=10, ejected=0, others_left=0, max_percent=50)
    assert may_eject(backends=10, ejected=0, others_left=1, max_percent=50)


def test_a_refused_ejection_asks_again_on_the_next_failure() -> None:
    d = OutlierDetector(threshold=3, backoff=10.0)
    room = False
    for _ in range(3):
        assert not d.failure(KEY, 0.0, lambda: room)
    assert d.ejected() == frozenset()
    room = True
    assert d.failure(KEY, 1.0, lambda: room)  # one more failure, not three
    assert d.next_expiry == 11.0  # a first ejection: the refusal was no strike


def test_room_is_asked_only_at_the_threshold() -> None:
    d = OutlierDetector(threshold=3)
    asked: list[float] = []

    def room() -> bool:
        asked.append(1.0)
        return True

    d.failure(KEY, 0.0, room)
    d.failure(KEY, 0.0, room)
    assert asked == []
    assert d.failure(KEY, 0.0, room)
    assert asked == [1.0]
