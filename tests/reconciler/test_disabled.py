"""Stored proxies that break a rule (rows written before the rule existed, or by hand) are
left out of snapshots, listed in ``Reconciler.disabled`` and logged once; the others keep
being served, and fixing the proxy through the service brings it back."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from tests.reconciler.seed import admin, draft
from tests.security.rows import write_by_hand

from portway.model import HealthCheck, Proxy, SessionPersistence
from portway.reconciler.builder import Disabled, disabled_after, screen
from portway.reconciler.reconciler import Reconciler
from portway.service import Service
from portway.service.validation import Problem
from portway.store import Store

CRLF_COOKIE = {"type": "cookie", "cookie_name": "s\r\nX-Injected: yes"}


def routed(rec: Reconciler, host: str) -> bool:
    assert rec.snapshot is not None
    return rec.snapshot.routes.match(host, "/") is not None


def test_a_proxy_broken_by_hand_leaves_the_snapshot_and_comes_back_when_fixed(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    service = Service(store)
    actor = admin(service)
    good = service.create_proxy(actor, "alpha", draft("good.alpha.test"))
    bad = service.create_proxy(actor, "alpha", draft("bad.alpha.test"))
    rec = Reconciler(store, lambda s, c: None)
    rec.build_initial()
    assert routed(rec, "bad.alpha.test") and rec.disabled == {}

    caplog.set_level(logging.INFO, logger="portway.reconciler")
    write_by_hand(store, bad.id, session_persistence=CRLF_COOKIE)
    snap = rec.step()
    assert snap is not None and snap.version == store.current_revision()
    assert not routed(rec, "bad.alpha.test")
    assert routed(rec, "good.alpha.test")
    assert list(rec.disabled) == [bad.id]
    entry = rec.disabled[bad.id]
    assert (entry.project, entry.hostname) == ("alpha", "bad.alpha.test")
    assert [p.field for p in entry.problems] == ["session_persistence.cookie_name"]

    # Other changes (and the same bad row written again) do not log it again.
    service.update_proxy(actor, "alpha", good.id, {"backend_port": 81})
    rec.step()
    write_by_hand(store, bad.id, session_persistence=CRLF_COOKIE)
    rec.step()
    assert not routed(rec, "bad.alpha.test") and list(rec.disabled) == [bad.id]
    warnings = [r for r in caplog.records if f"proxy {bad.id} disabled" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "session_persistence.cookie_name" in warnings[0].getMessage()

    # The tenant fixes it through the service (the API): it is served again.
    fixed = SessionPersistence(type="cookie", cookie_name="sid")
    service.update_proxy(actor, "alpha", bad.id, {"session_persistence": fixed})
    rec.step()
    assert routed(rec, "bad.alpha.test") and rec.disabled == {}
    assert any(f"proxy {bad.id} is no longer disabled" in r.getMessage() for r in caplog.records)


def test_a_stored_bad_row_is_left_out_of_the_first_snapshot(store: Store) -> None:
    service = Service(store)
    actor = admin(service)
    service.create_proxy(actor, "alpha", draft("good.alpha.test"))
    bad = service.create_proxy(actor, "alpha", draft("probe.alpha.test"))
    check = {**dataclasses.asdict(HealthCheck()), "method": "GET / HTTP/1.1\r\nX: y\r\n\r\nGET"}
    write_by_hand(store, bad.id, health_check=check)

    rec = Reconciler(store, lambda s, c: None)
    first = rec.build_initial()
    assert len(first.routes) == 1 and routed(rec, "good.alpha.test")
    assert [p.field for p in rec.disabled[bad.id].problems] == ["health_check.method"]

    service.delete_proxy(actor, "alpha", bad.id)
    rec.step()
    assert rec.disabled == {}


def test_screen_splits_by_the_service_rules() -> None:
    ok = Proxy(id="a", project="p", hostname="a.example.org")
    bad = Proxy(
        id="b",
        project="p",
        hostname="b.example.org",
        health_check=HealthCheck(path="/\r\nX: y"),
        session_persistence=SessionPersistence(type="cookie", cookie_name="a b"),
    )
    good, rejected = screen([ok, bad])
    assert good == [ok]
    assert list(rejected) == ["b"]
    assert [p.field for p in rejected["b"].problems] == [
        "session_persistence.cookie_name",
        "health_check.path",
    ]


def test_disabled_after_follows_the_changed_ids() -> None:
    entry = Disabled("p", "a.example.org", "/", (Problem("hostname", "bad"),))
    other = Disabled("p", "b.example.org", "/", (Problem("hash_key", "bad"),))
    previous = {"a": entry}
    assert disabled_after(previous, {"x"}, {}) is previous  # untouched: the same object
    assert disabled_after(previous, {"a"}, {}) == {}  # fixed or deleted
    assert disabled_after(previous, {"b"}, {"b": other}) == {"a": entry, "b": other}


def test_a_stored_crlf_path_rewrite_is_left_out_of_the_snapshot(store: Store) -> None:
    service = Service(store)
    actor = admin(service)
    bad = service.create_proxy(actor, "alpha", draft("rewrite.alpha.test"))
    write_by_hand(store, bad.id, rewrite={"backend_prefix": "/x HTTP/1.1\r\nX-Injected: yes"})
    rec = Reconciler(store, lambda s, c: None)
    rec.build_initial()
    assert not routed(rec, "rewrite.alpha.test")
    assert [p.field for p in rec.disabled[bad.id].problems] == ["rewrite.backend_prefix"]
