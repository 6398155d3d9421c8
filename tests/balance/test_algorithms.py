"""Weighted, least-conn, two-choice random and hash balancers, checked statistically with
a seeded random source."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from portway.balance import make_balancer
from portway.balance.hashing import ConsistentHash
from portway.errors import ValidationError
from portway.model import Backend


def pool(*weights: int) -> list[Backend]:
    return [
        Backend(id=f"b{i}", address="127.0.0.1", port=9000 + i, weight=w)
        for i, w in enumerate(weights)
    ]


def test_smooth_weighted_interleaves_like_nginx() -> None:
    wrr = make_balancer("weighted_round_robin")
    backends = pool(5, 1, 1)
    order = [wrr.pick(backends, "c").id for _ in range(7)]  # type: ignore[union-attr]
    assert order == ["b0", "b0", "b1", "b0", "b2", "b0", "b0"]


def test_smooth_weighted_honours_weights_over_many_picks() -> None:
    wrr = make_balancer("weighted_round_robin")
    backends = pool(3, 2, 1)
    counts = Counter(wrr.pick(backends, "c").id for _ in range(600))  # type: ignore[union-attr]
    assert counts == {"b0": 300, "b1": 200, "b2": 100}


def test_least_conn_prefers_the_idle_backend() -> None:
    inflight = {"b0": 5, "b1": 0, "b2": 3}
    lc = make_balancer("least_conn", inflight=inflight)
    assert {lc.pick(pool(1, 1, 1), "c").id for _ in range(5)} == {"b1"}  # type: ignore[union-attr]


def test_least_conn_spreads_ties() -> None:
    lc = make_balancer("least_conn", inflight={})
    picks = Counter(lc.pick(pool(1, 1, 1), "c").id for _ in range(30))  # type: ignore[union-attr]
    assert picks == {"b0": 10, "b1": 10, "b2": 10}


def test_least_conn_scales_load_by_weight() -> None:
    lc = make_balancer("least_conn", inflight={"b0": 3, "b1": 2})
    # b0 carries 4/4=1.0 per weight unit, b1 3/1=3.0
    assert lc.pick(pool(4, 1), "c").id == "b0"  # type: ignore[union-attr]


def test_two_choices_never_picks_the_most_loaded_of_three() -> None:
    inflight = {"b0": 0, "b1": 0, "b2": 100}
    p2c = make_balancer("random", inflight=inflight, rng=random.Random(7))
    picks = Counter(p2c.pick(pool(1, 1, 1), "c").id for _ in range(3000))  # type: ignore[union-attr]
    # b2 only wins when drawn twice, which distinct draws rule out
    assert picks["b2"] == 0
    assert abs(picks["b0"] - picks["b1"]) < 300


def test_two_choices_is_uniform_without_load() -> None:
    p2c = make_balancer("random", rng=random.Random(1))
    picks = Counter(p2c.pick(pool(1, 1, 1, 1), "c").id for _ in range(8000))  # type: ignore[union-attr]
    for count in picks.values():
        assert 1700 < count < 2300


def test_consistent_hash_keeps_keys_when_another_backend_leaves() -> None:
    ch = ConsistentHash()
    full = pool(1, 1, 1, 1)
    before = {k: ch.pick(full, "c", f"user{k}").id for k in range(2000)}  # type: ignore[union-attr]
    remaining = [b for b in full if b.id != "b2"]
    after = {k: ch.pick(remaining, "c", f"user{k}").id for k in range(2000)}  # type: ignore[union-attr]
    moved = [k for k in before if before[k] != after[k]]
    assert all(before[k] == "b2" for k in moved)
    assert 300 < len(moved) < 700  # about a quarter of the keys lived on b2


def test_consistent_hash_spreads_keys() -> None:
    ch = ConsistentHash()
    counts = Counter(ch.pick(pool(1, 1, 1), "c", f"k{i}").id for i in range(3000))  # type: ignore[union-attr]
    for count in counts.values():
        assert 700 < count < 1300


def test_source_ip_sends_a_client_to_one_backend() -> None:
    sip = make_balancer("source_ip")
    backends = pool(1, 1, 1)
    for client in ("10.0.0.1", "10.0.0.2", "192.0.2.9"):
        assert len({sip.pick(backends, client).id for _ in range(10)}) == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "algorithm",
    ["round_robin", "weighted_round_robin", "least_conn", "random", "source_ip", "consistent_hash"],
)
def test_every_algorithm_returns_none_without_candidates(algorithm: str) -> None:
    assert make_balancer(algorithm).pick([], "c") is None


def test_unknown_algorithm_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        make_balancer("fastest")
    assert info.value.field == "algorithm"
