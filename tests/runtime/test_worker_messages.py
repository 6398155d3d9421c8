"""Worker pipe messages: certificates travel in full messages and in deltas only when the
mapping changed; a worker's snapshot after the messages equals the control's."""

from __future__ import annotations

import pickle

from portway.model import Certificate, Proxy, TlsSettings
from portway.router import RouteTable, Snapshot
from portway.runtime.workers import apply_message, delta_message, full_message

CERT = Certificate(id="c1", project="p", name="c", chain_pem="CHAIN", key_pem="KEY", names=("a.t",))


def _proxy(pid: str, cert: str | None = None) -> Proxy:
    return Proxy(id=pid, project="p", hostname=f"{pid}.t", tls=TlsSettings(certificate=cert))


def test_full_message_carries_certificates() -> None:
    snap = Snapshot(
        version=3, routes=RouteTable.build([_proxy("a", "c1")]), certificates={"c1": CERT}
    )
    message = pickle.loads(pickle.dumps(full_message(snap)))
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
    assert message[4] is None
    worker = apply_message(worker, message)
    assert worker.certificates == {"c1": CERT} and worker.routes.get("b") is not None

    detached = Snapshot(
        version=3, routes=plain.routes.with_changes(upserts=[_proxy("a")]), certificates={}
    )
    worker = apply_message(worker, delta_message(detached, {"a"}, certificates_changed=True))
    assert worker.version == 3 and worker.certificates == {}


def test_old_style_messages_still_apply() -> None:
    worker = apply_message(Snapshot(version=0), ("full", 1, [_proxy("a")]))
    worker = apply_message(worker, ("delta", 2, [_proxy("b")], ["a"]))
    assert worker.version == 2 and worker.routes.get("a") is None and worker.certificates == {}
