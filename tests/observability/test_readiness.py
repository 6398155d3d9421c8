"""The readiness rule behind /healthz: every step from the store to the wire caught up."""

from __future__ import annotations

from portway.observability.readiness import LAG_ALLOWED, Readiness


def test_ready_when_every_step_has_caught_up() -> None:
    state = Readiness(store=7, built=7, applied=7)
    assert state.ready
    assert state.as_json() == {
        "status": "ok",
        "reasons": [],
        "revision": {"store": 7, "built": 7, "applied": 7},
    }


def test_not_serving_yet() -> None:
    state = Readiness(store=3, built=3, applied=0)
    assert not state.ready
    assert state.reasons == ("the data plane is not serving yet",)


def test_the_data_plane_behind_the_snapshot() -> None:
    state = Readiness(store=5, built=5, applied=4)
    assert state.reasons == ("the data plane serves revision 4, not yet 5",)
    assert state.as_json()["status"] == "not-ready"


def test_the_snapshot_behind_the_store() -> None:
    state = Readiness(store=9, built=5, applied=5)
    assert state.reasons == ("the store is at revision 9, the newest snapshot 5",)


def test_a_change_on_its_way_is_not_behind_until_it_has_waited_too_long() -> None:
    """A busy node is always a few milliseconds behind some write: that is not a reason
    to take it out of rotation, but a change stuck for seconds is."""
    on_its_way = Readiness(store=9, built=8, applied=7, waited=0.05)
    assert on_its_way.ready
    stuck = Readiness(store=9, built=8, applied=7, waited=LAG_ALLOWED + 0.1)
    assert stuck.reasons == (
        "the data plane serves revision 7, not yet 8",
        "the store is at revision 9, the newest snapshot 8",
    )
    # Never served: not ready, however fresh its first snapshot.
    assert not Readiness(store=3, built=3, applied=0, waited=0.0).ready
