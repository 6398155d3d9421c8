"""Round robin spreads evenly and survives a changing candidate list."""

from collections import Counter

from portway.balance import RoundRobin, make_balancer
from portway.model import Backend


def backends(n: int) -> list[Backend]:
    return [Backend(id=f"b{i}", address="127.0.0.1", port=8000 + i) for i in range(n)]


def test_round_robin_visits_each_backend_equally() -> None:
    rr = RoundRobin()
    pool = backends(3)
    counts = Counter(rr.pick(pool, "c").id for _ in range(300))  # type: ignore[union-attr]
    assert counts == {"b0": 100, "b1": 100, "b2": 100}


def test_round_robin_takes_turns_in_order() -> None:
    rr = RoundRobin()
    pool = backends(2)
    assert [rr.pick(pool, "c").id for _ in range(4)] == ["b0", "b1", "b0", "b1"]  # type: ignore[union-attr]


def test_no_candidates_gives_none() -> None:
    assert RoundRobin().pick([], "c") is None


def test_shrinking_candidate_list_stays_in_range() -> None:
    rr = RoundRobin()
    for _ in range(5):
        rr.pick(backends(5), "c")
    picked = rr.pick(backends(2), "c")
    assert picked is not None and picked.id in {"b0", "b1"}


def test_factory_builds_round_robin() -> None:
    assert isinstance(make_balancer("round_robin"), RoundRobin)
