"""Worker pipe messages: certificates travel in full messages and in deltas only when the
mapping changed; a worker's snapshot after the messages equals the control's, also when
the snapshots it missed were merged into one plan."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from portway.model import Certificate, Proxy, TlsSettings
from portway.router import RouteTable, Snapshot
from portway.runtime.worker_messages import (
    FullSnapshot,
    HealthUpdate,
    SnapshotDelta,
    SnapshotPlan,
    apply_message,
    delta_message,
    full_message,
)

CERT = Certificate(id="c1", project="p", name="c", chain_pem="CHAIN", key_pem="KEY", names=("a.t",))


def _proxy(pid: str, cert: str | None = None, prefix: str = "/") -> Proxy:
    return Proxy(
        id=pid,
        project="p",
        hostname=f"{pid}.t",
        path_prefix=prefix,
        tls=TlsSettings(certificate=cert),
    )


def _served(snapshot: Snapshot) -> dict[str, Proxy]:
    return {r.proxy.id: r.proxy for r in snapshot.routes.routes()}


def test_full_message_carries_certificates() -> None:
    snap = Snapshot(
        version=3, routes=RouteTable.build([_proxy("a", "c1")]), certificates={"c1": CERT}
    )
    message = pickle.loads(pickle.dumps(full_message(snap)))
    assert isinstance(message, FullSnapshot)
    worker = apply_message(Snapshot(version=0), message)
    assert worker.version == 3 and worker.certificates == {"c1": CERT}
    assert worker.routes.get("a") is not None


def test_delta_sends_certificates_only_when_they_changed() -> None:
    first = Snapshot(
        version=1, routes=RouteTable.build([_proxy("a", "c1")]), certificates={"c1": CERT}
    )
    worker = apply_message(Snapshot(version=0), full_message(first))

    plain = Snapshot(
        version=2,
        routes=first.routes.with_changes(upserts=[_proxy("b")]),
        certificates=first.certificates,
    )
    message = delta_message(plain, {"b"})
    assert message.certificates is None and message.removed == ()
    worker = apply_message(worker, message)
    assert worker.certificates == {"c1": CERT} and worker.routes.get("b") is not None

    detached = Snapshot(
        version=3, routes=plain.routes.with_changes(upserts=[_proxy("a")]), certificates={}
    )
    worker = apply_message(worker, delta_message(detached, {"a"}, certificates_changed=True))
    assert worker.version == 3 and worker.certificates == {}


def test_messages_are_frozen_and_survive_the_pipe() -> None:
    message = HealthUpdate(down=frozenset({("p", "b")}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.down = frozenset()  # type: ignore[misc]
    assert pickle.loads(pickle.dumps(message)) == message


def _chain() -> list[tuple[Snapshot, set[str], bool]]:
    """Snapshots 2..5 after snapshot 1 (a, b, c): edits, a removal, a re-add and a
    certificate that comes and goes, each with the ids it changed."""
    s1 = Snapshot(version=1, routes=RouteTable.build([_proxy("a"), _proxy("b"), _proxy("c")]))
    steps: list[tuple[Snapshot, set[str], bool]] = [(s1, set(), False)]

    def step(upserts: list[Proxy], removed: set[str], certs: dict[str, Certificate] | None) -> None:
        prev = steps[-1][0]
        routes = prev.routes.with_changes(upserts=upserts, removed=removed)
        mapping = prev.certificates if certs is None else certs
        snap = Snapshot(version=prev.version + 1, routes=routes, certificates=mapping)
        steps.append((snap, {p.id for p in upserts} | removed, certs is not None))

    step([_proxy("a", prefix="/x")], {"b"}, None)
    step([_proxy("d", "c1")], set(), {"c1": CERT})
    step([_proxy("b")], {"c"}, None)
    step([_proxy("d")], {"a"}, {})
    return steps


@pytest.mark.parametrize("sent", [1, 2, 3])
def test_a_merged_plan_brings_a_late_worker_to_the_newest_snapshot(sent: int) -> None:
    """The worker took the first ``sent`` snapshots one by one; the rest were merged
    while it did not read. It ends up serving exactly the newest snapshot."""
    steps = _chain()
    worker = apply_message(Snapshot(version=0), full_message(steps[0][0]))
    for snap, changed, moved in steps[1:sent]:
        worker = apply_message(worker, SnapshotPlan(snap, frozenset(changed), moved).message())
    plans = [SnapshotPlan(s, frozenset(c), m) for s, c, m in steps[sent:]]
    merged = plans[0]
    for plan in plans[1:]:
        merged = merged.merged(plan)
    message = pickle.loads(pickle.dumps(merged.message()))
    assert isinstance(message, SnapshotDelta)
    worker = apply_message(worker, message)
    newest = steps[-1][0]
    assert worker.version == newest.version == 5
    assert _served(worker) == _served(newest)
    assert dict(worker.certificates) == dict(newest.certificates) == {}


def test_a_full_plan_merged_with_deltas_stays_full() -> None:
    steps = _chain()
    full = SnapshotPlan(steps[1][0], None)
    merged = full.merged(SnapshotPlan(steps[2][0], frozenset(steps[2][1]), True))
    message = merged.message()
    assert isinstance(message, FullSnapshot) and message.version == 3
    assert _served(apply_message(Snapshot(version=0), message)) == _served(steps[2][0])
