"""The token bucket per client, with a fake clock: rate, burst, Retry-After, bounded
memory under address rotation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portway.limits.bucket import Buckets, Rate


def test_a_burst_passes_then_the_next_request_waits_one_interval() -> None:
    buckets = Buckets(Rate.of(10, 3))
    assert [buckets.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 0.0) == pytest.approx(0.1)
    assert buckets.take("a", 0.1) == 0.0  # one token came back


def test_another_client_is_unaffected() -> None:
    buckets = Buckets(Rate.of(1, 1))
    assert buckets.take("a", 0.0) == 0.0
    assert buckets.take("a", 0.0) > 0
    assert buckets.take("b", 0.0) == 0.0


def test_burst_defaults_to_one_seconds_worth() -> None:
    assert Rate.of(5, None).burst == 5
    assert Rate.of(0.5, None).burst == 1


def test_a_refused_request_costs_no_token() -> None:
    buckets = Buckets(Rate.of(1, 1))
    buckets.take("a", 0.0)
    for _ in range(100):
        assert buckets.take("a", 0.5) == pytest.approx(0.5)
    assert buckets.take("a", 1.0) == 0.0


@given(
    rate=st.floats(0.5, 1000),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 0.5), min_size=1, max_size=300),
)
def test_passed_requests_never_exceed_burst_plus_rate_times_time(
    rate: float, burst: int, gaps: list[float]
) -> None:
    buckets = Buckets(Rate.of(rate, burst))
    now, passed = 0.0, 0
    for gap in gaps:
        now += gap
        passed += buckets.take("a", now) == 0.0
    assert passed <= burst + rate * now + 1e-6


def test_idle_clients_leave_the_table() -> None:
    buckets = Buckets(Rate.of(10, 1))
    for n in range(1000):
        buckets.take(f"10.0.{n // 256}.{n % 256}", n * 1.0)  # each idle before the next
    assert len(buckets) <= 2


def test_rotating_addresses_cannot_grow_the_table_past_its_bound() -> None:
    buckets = Buckets(Rate.of(1, 1), max_clients=500)
    for n in range(20_000):
        assert buckets.take(f"client-{n}", 0.0) == 0.0  # all at once: nobody idle
    assert len(buckets) == 500


def test_a_workers_share_of_a_rate() -> None:
    assert Rate.of(100, 30).share(2) == Rate(50.0, 15)
    assert Rate.of(1, 1).share(4) == Rate(0.25, 1)  # never a burst of 0
    assert Rate.of(7, 3).share(1) == Rate.of(7, 3)
