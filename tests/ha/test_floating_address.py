"""keepalived moves the floating address off a node that dies under load; the node comes
back, catches up, and does not take the address back."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.ha.keepalived import FLOATING, Keepalived, doc_template, render
from tests.ha.tier import (
    API_PORT,
    NODES,
    PROJECT,
    Tier,
    nodes_view,
    status_of,
    wait_converged,
    wait_status,
)

HOST = "vip.ha.test"
PRIORITIES = dict(zip(NODES, (150, 100, 50), strict=True))


def test_the_tested_keepalived_conf_is_the_docs_block() -> None:
    """The placeholders the doc names are the ones the tests fill in; the result asks
    this node's /healthz and passes keepalived's own check."""
    names = set(doc_template().get_identifiers())
    assert names == {"NODE_API", "INTERFACE", "ROUTER_ID", "PRIORITY", "FLOATING_ADDRESS"}
    conf = render("192.0.2.11:5668", 150)
    assert 'http://192.0.2.11:5668/healthz"' in conf and "track_script" in conf
    # The doc's own command (envsubst) makes the same file as the tests' rendering.
    env = {"NODE_API": "192.0.2.11:5668", "INTERFACE": "eth0", "ROUTER_ID": "51"}
    env |= {"PRIORITY": "150", "FLOATING_ADDRESS": f"{FLOATING}/24", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        ["envsubst"], input=doc_template().template, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == conf


@pytest.fixture(scope="module")
def keepalived(tier: Tier) -> Iterator[Keepalived]:
    k = Keepalived(tier.net, tier.root)
    try:
        for name, node in tier.nodes.items():
            conf = k.config(name, f"{node.host}:{API_PORT}", PRIORITIES[name])
            k.check(conf)
            k.start(name, conf)
        k.wait_holder(list(NODES))
        yield k
    finally:
        k.stop()


@dataclass(frozen=True)
class Outcome:
    start: float
    end: float
    ok: bool
    error: str


def _load(address: str, stop: threading.Event, out: list[Outcome]) -> None:
    """One new connection per request, as many clients behind the address make."""
    while not stop.is_set():
        start = time.monotonic()
        status = status_of(address, HOST)
        out.append(Outcome(start, time.monotonic(), status == 200, str(status)))
        time.sleep(0.005)


def test_killing_the_node_with_the_address_moves_it_and_only_its_connections_fail(
    tier: Tier, keepalived: Keepalived
) -> None:
    names = list(NODES)
    r = tier.nodes["n1"].api("POST", f"/v1/{PROJECT}/proxies", json=tier.proxy_body(HOST))
    assert r.status_code == 201, r.text
    for node in tier.nodes.values():
        wait_status(node.host, HOST, 200)
    old = keepalived.wait_holder(names)
    survivors = [n for n in names if n != old]
    stop = threading.Event()
    via_floating: list[Outcome] = []
    direct: dict[str, list[Outcome]] = {n: [] for n in survivors}
    loads = [threading.Thread(target=_load, args=(FLOATING, stop, via_floating)) for _ in "ab"]
    loads += [
        threading.Thread(target=_load, args=(tier.nodes[n].host, stop, direct[n]))
        for n in survivors
    ]
    gained = {n: keepalived.watch(n) for n in survivors}
    for t in loads:
        t.start()
    try:
        time.sleep(1.0)
        killed_at = time.monotonic()
        tier.nodes[old].stop(sig=9)
        new = keepalived.wait_holder(names, other_than=old)
        moved_at = time.monotonic()
        time.sleep(2.0)
    finally:
        stop.set()
        for t in loads:
            t.join()
    failed = [o for o in via_floating if not o.ok]
    assert gained[new], "ip monitor never saw the address arrive"
    moved = gained[new][0] - killed_at
    # A connection tried while the address is on no node waits for its SYN's retry (1 s).
    recovered = min(o.end for o in via_floating if o.ok and o.start > killed_at)
    print(
        f"\nfloating address moved {old} → {new} in {moved * 1e3:.0f} ms;"
        f" first answer to a client after the kill: {(recovered - killed_at) * 1e3:.0f} ms;"
        f" {len(failed)} of {len(via_floating)} requests through it failed"
        f" ({sum(o.start < killed_at for o in failed)} in flight at the kill, the rest"
        " refused while the address was still on the dead node), "
        f"{sum(len(v) for v in direct.values())} direct to the survivors, none failed"
    )
    assert new in survivors
    # Nothing failed before the kill, and each failure was a connection to the dead
    # node: in flight when it died, or made while the address still pointed at it.
    assert all(o.end >= killed_at and o.start <= moved_at + 0.5 for o in failed), failed
    assert all(o.ok for o in via_floating if o.start > moved_at + 0.5)
    assert all(o.ok for outcomes in direct.values() for o in outcomes)
    assert len(via_floating) > 100

    # A change while it is down; it comes back, catches up and stays a backup.
    r = tier.nodes[new].api("POST", f"/v1/{PROJECT}/proxies", json=tier.proxy_body("late.ha.test"))
    assert r.status_code == 201, r.text
    tier.nodes[old].launch()
    tier.nodes[old].wait_up()
    revision = int(r.json()["proxy"]["revision"])
    view = wait_converged(tier.nodes[old], revision)
    assert len({n["digest"] for n in view.values()}) == 1, view
    wait_status(tier.nodes[old].host, "late.ha.test", 200, timeout=1)
    time.sleep(3.5)  # the check's rise (2 times 1 s) and then some: nopreempt keeps it there
    assert keepalived.holders(names) == [new]
    assert not nodes_view(tier.nodes[old])[old]["lost"]
