"""How a data plane's health view judges its own traffic: ``Plans.report`` and the
candidate lists, with values alone (no sockets) and a hand-driven clock."""

from __future__ import annotations

from typing import Any

from portway.dataplane.plans import Plan, Plans
from portway.dataplane.pool import UpstreamPool
from portway.dataplane.settings import DataPlaneSettings
from portway.dataplane.upstream import UpstreamConnection
from portway.health.passive import Outcome
from portway.model import Backend, Proxy

PID = "app/"


def proxy(*ids: str, backups: tuple[str, ...] = ()) -> Proxy:
    backends = [Backend(id=i, address="127.0.0.1", port=8000 + n) for n, i in enumerate(ids)]
    backends += [
        Backend(id=i, address="127.0.0.1", port=9000 + n, backup=True)
        for n, i in enumerate(backups)
    ]
    return Proxy(id=PID, project="p", hostname="app", path_prefix="/", backends=tuple(backends))


def plans(**settings: Any) -> Plans:
    pool: UpstreamPool[UpstreamConnection] = UpstreamPool(4)
    return Plans(pool, DataPlaneSettings(**settings))


def report(
    p: Plans,
    plan: Plan,
    backend_id: str,
    outcome: Outcome,
    now: float = 0.0,
    *,
    body_done: bool = True,
    status: int = 0,
) -> None:
    """One exchange's outcome on ``backend_id``, as the client connection reports it."""
    backend = next(b for b in plan.proxy.backends if b.id == backend_id)
    p.report(plan, backend, outcome, now, request_sent=body_done, status=status)


def fail(p: Plans, plan: Plan, backend_id: str, times: int, **kw: bool) -> None:
    for _ in range(times):
        report(p, plan, backend_id, Outcome.NO_ANSWER, **kw)


def ids(plan: Plan) -> list[str]:
    return [b.id for b in plan.live()]


def test_failures_before_the_whole_request_was_read_do_not_eject() -> None:
    p = plans()
    plan = p.get(proxy("a", "b"))
    fail(p, plan, "a", 10, body_done=False)
    for _ in range(10):
        report(p, plan, "a", Outcome.ANSWERED, body_done=False, status=502)
        report(p, plan, "a", Outcome.TIMED_OUT, body_done=False)
    assert p.outliers.ejected() == frozenset()
    fail(p, plan, "a", 3)
    assert p.outliers.ejected() == {(PID, "a")}
    assert ids(plan) == ["b"]


def test_connect_failures_count_even_while_the_body_is_still_arriving() -> None:
    p = plans()
    plan = p.get(proxy("a", "b"))
    for _ in range(3):
        report(p, plan, "a", Outcome.CONNECT_FAILED, body_done=False)
    assert p.outliers.ejected() == {(PID, "a")}


def test_a_proxy_with_one_backend_never_ejects_it() -> None:
    p = plans(passive_max_ejection_percent=100)
    plan = p.get(proxy("only"))
    fail(p, plan, "only", 30)
    assert p.outliers.ejected() == frozenset()
    assert ids(plan) == ["only"]


def test_at_most_the_percent_of_backends_is_ejected() -> None:
    p = plans()  # 50 %
    plan = p.get(proxy("a", "b", "c", "d"))
    for backend in "abcd":
        fail(p, plan, backend, 3)
    assert len(p.outliers.ejected()) == 2
    assert len(ids(plan)) == 2


def test_the_last_healthy_primary_is_not_ejected_while_backups_wait() -> None:
    p = plans(passive_max_ejection_percent=100)
    plan = p.get(proxy("a", "b", backups=("spare",)))
    fail(p, plan, "a", 3)
    fail(p, plan, "b", 3)
    assert p.outliers.ejected() == {(PID, "a")}
    assert ids(plan) == ["b"]


def test_a_backend_down_by_active_checks_is_no_healthy_peer() -> None:
    p = plans()
    plan = p.get(proxy("a", "b"))
    p.set_down(frozenset({(PID, "b")}))
    fail(p, plan, "a", 3)
    assert p.outliers.ejected() == frozenset()
    assert ids(plan) == ["a"]


def test_ejections_give_way_when_active_checks_take_the_rest_down() -> None:
    p = plans()
    plan = p.get(proxy("a", "b"))
    fail(p, plan, "a", 3)
    assert ids(plan) == ["b"]
    p.set_down(frozenset({(PID, "b")}))  # b goes down after a was ejected
    assert ids(plan) == ["a"]  # rather than no backend at all
    p.set_down(frozenset({(PID, "a"), (PID, "b")}))
    assert ids(plan) == []  # active verdicts are never overridden


def test_room_comes_back_when_an_ejection_ends() -> None:
    p = plans(passive_backoff=10.0)
    plan = p.get(proxy("a", "b"))
    fail(p, plan, "a", 3)
    fail(p, plan, "b", 3)  # refused: a is out
    assert p.outliers.ejected() == {(PID, "a")}
    p.expire(10.0)
    report(p, plan, "b", Outcome.NO_ANSWER, 10.0)  # one more is enough now
    assert p.outliers.ejected() == {(PID, "b")}
    assert ids(plan) == ["a"]


def test_an_answer_below_500_is_a_success_even_before_the_body_is_read() -> None:
    p = plans()
    plan = p.get(proxy("a", "b"))
    fail(p, plan, "a", 2)
    report(p, plan, "a", Outcome.ANSWERED, body_done=False, status=408)
    fail(p, plan, "a", 2)
    assert p.outliers.ejected() == frozenset()
