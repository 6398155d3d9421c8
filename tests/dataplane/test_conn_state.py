"""The client connection's state machine, with values alone: a fake clock, no sockets."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portway.dataplane import conn_state as cs
from portway.dataplane.conn_state import ConnState
from portway.dataplane.settings import DataPlaneSettings

SETTINGS = DataPlaneSettings(client_header_timeout=10.0, keepalive_timeout=75.0, read_timeout=60.0)


NOTHING_QUEUED: tuple[str, ...] = ()
QUEUED = ("a parsed request",)
STASH = b"GET / HTTP/1.1\r\n"


@dataclass
class Clock:
    now: float = 1000.0


def fresh() -> tuple[ConnState, Clock]:
    clock = Clock()
    return ConnState(clock, SETTINGS), clock


def busy(idle: float = 30.0, total: float | None = None) -> tuple[ConnState, Clock]:
    """A connection whose first request was parsed and routed."""
    state, clock = fresh()
    state.read()
    state.expect_backend(idle, idle, total)
    return state, clock


# -- phases and deadlines ------------------------------------------------------------


def test_new_connection_waits_for_a_head_under_the_slowloris_timer() -> None:
    state, _ = fresh()
    assert state.phase == cs.HEAD and not state.closing
    assert state.deadline == 1000.0 + SETTINGS.client_header_timeout
    assert state.hard_deadline == cs.NEVER


def test_bytes_of_a_slow_head_do_not_extend_its_timer() -> None:
    state, clock = fresh()
    clock.now += 5
    state.read()
    assert state.phase == cs.HEAD and state.deadline == 1010.0


def test_request_sent_to_a_backend_makes_the_connection_busy() -> None:
    state, clock = fresh()
    clock.now = 1003.0
    state.expect_backend(5.0, 30.0, None)
    assert state.phase == cs.BUSY and state.idle == 30.0
    assert state.deadline == 1008.0 and state.hard_deadline == cs.NEVER


def test_total_timer_starts_with_the_first_backend_step_and_keeps_running() -> None:
    state, clock = fresh()
    state.expect_backend(5.0, 30.0, 120.0)  # connecting
    clock.now += 4
    state.expect_backend(60.0, 30.0, 120.0)  # connected (or a retry): same exchange
    assert state.hard_deadline == 1120.0 and state.deadline == 1064.0


def test_bytes_read_while_busy_restart_the_idle_timer() -> None:
    state, clock = busy(idle=30.0)
    state.expect_backend(2.0, 30.0, None)
    clock.now += 1
    state.read()  # body bytes, or a pipelined head
    assert state.phase == cs.BUSY and state.deadline == 1031.0


def test_exchange_takes_the_proxy_timeouts() -> None:
    state, clock = busy(idle=30.0, total=120.0)
    assert state.idle == 30.0 and state.hard_deadline == 1120.0
    clock.now += 7
    state.read()  # body bytes from the client
    assert state.deadline == 1037.0
    state.touch()  # bytes from the backend
    assert state.deadline == 1037.0
    state.expect_backend(5.0, 30.0, 120.0)
    assert state.deadline == 1012.0 and state.hard_deadline == 1120.0


def test_exchange_without_total_timeout_has_no_hard_deadline() -> None:
    state, _ = busy(total=None)
    assert state.hard_deadline == cs.NEVER


def test_done_exchange_goes_idle_under_the_keepalive_timer() -> None:
    state, clock = busy(total=5.0)
    clock.now += 2
    assert state.exchange_done(False, False, NOTHING_QUEUED, b"") == cs.WAIT
    assert state.phase == cs.IDLE and state.deadline == 1002.0 + SETTINGS.keepalive_timeout
    assert state.hard_deadline == cs.NEVER
    state.read()
    assert state.phase == cs.HEAD and state.deadline == 1002.0 + SETTINGS.client_header_timeout


@pytest.mark.parametrize(
    ("head_pending", "queued", "stash", "decision", "phase"),
    [
        (True, False, False, cs.WAIT, cs.HEAD),
        (False, True, False, cs.START_NEXT, cs.BUSY),
        (True, True, False, cs.START_NEXT, cs.HEAD),
        (False, False, True, cs.FEED_STASH, cs.IDLE),
        (False, True, True, cs.FEED_STASH, cs.BUSY),
    ],
)
def test_done_exchange_with_more_input_starts_the_next_under_the_head_timer(
    head_pending: bool, queued: bool, stash: bool, decision: int, phase: int
) -> None:
    state, _ = busy()
    assert (
        state.exchange_done(False, head_pending, QUEUED if queued else (), STASH if stash else b"")
        == decision
    )
    assert state.phase == phase
    if head_pending or queued:
        assert state.deadline == 1000.0 + SETTINGS.client_header_timeout
    else:
        assert state.deadline == 1000.0 + SETTINGS.keepalive_timeout


def test_done_exchange_that_must_close_says_close() -> None:
    state, _ = busy()
    assert state.exchange_done(True, False, QUEUED, STASH) == cs.CLOSE


def test_owed_status_is_answered_once_the_queue_is_empty() -> None:
    state, _ = busy()
    state.stream_broken(400)
    assert state.parser_dead and state.owed == 400
    assert state.exchange_done(False, False, NOTHING_QUEUED, b"") == cs.START_NEXT
    state.stream_broken(0)  # a later break (an Upgrade) does not forget the status owed
    assert state.owed == 400


def test_half_closed_client_gets_its_answer_then_the_close() -> None:
    state, _ = busy()
    assert state.client_eof(in_flight=True, queued=False)
    assert state.must_close(True, True, False)
    assert state.exchange_done(False, False, NOTHING_QUEUED, b"") == cs.CLOSE


@pytest.mark.parametrize(("in_flight", "queued"), [(False, False), (True, True), (False, True)])
def test_half_close_without_a_lone_answer_pending_closes_at_once(
    in_flight: bool, queued: bool
) -> None:
    state, _ = busy()
    assert not state.client_eof(in_flight, queued)
    assert not state.half_closed


def test_tunnel_runs_on_the_websocket_idle_timer_only() -> None:
    state, clock = busy(total=10.0)
    state.tunnel_opened(300.0)
    assert state.phase == cs.TUNNEL and state.closing
    assert state.hard_deadline == cs.NEVER and state.deadline == 1300.0
    clock.now += 100
    state.touch()
    assert state.deadline == 1400.0


def test_closed_connection_stays_closed() -> None:
    state, _ = busy()
    state.close()
    assert state.phase == cs.CLOSED and state.closing
    state.read()
    state.expect_backend(1.0, 1.0, 1.0)
    assert state.phase == cs.CLOSED
    assert state.exchange_done(False, False, NOTHING_QUEUED, b"") == cs.CLOSE


def test_expired_looks_at_both_deadlines() -> None:
    state, _ = busy(idle=30.0, total=5.0)
    assert not state.expired(1004.9)
    assert state.expired(1005.0)  # the total timeout
    state.exchange_done(False, False, NOTHING_QUEUED, b"")
    assert not state.expired(1005.0)
    assert state.expired(1000.0 + SETTINGS.keepalive_timeout)


# -- the keep-alive rule ------------------------------------------------------------


@pytest.mark.parametrize(
    ("keep_alive", "body_done", "draining", "parser_dead", "half_closed"),
    list(itertools.product((True, False), repeat=5)),
)
def test_answer_closes_for_any_one_reason(
    keep_alive: bool, body_done: bool, draining: bool, parser_dead: bool, half_closed: bool
) -> None:
    state, _ = busy()
    if parser_dead:
        state.stream_broken(0)
    if half_closed:
        state.client_eof(True, False)
    expected = not keep_alive or not body_done or draining or parser_dead or half_closed
    assert state.must_close(keep_alive, body_done, draining) is expected


# -- reading ------------------------------------------------------------


def test_stash_pauses_reading_until_it_is_fed() -> None:
    state, _ = busy()
    assert state.reading_change(False, False, True) == cs.PAUSE
    assert state.reading_change(False, False, True) == cs.KEEP  # asked once only
    assert state.reading_change(False, False, False) == cs.RESUME
    assert state.reading


def test_body_is_read_only_while_a_backend_takes_it() -> None:
    state, _ = busy()
    assert state.reading_change(True, False, False) == cs.PAUSE  # not bound yet
    assert state.reading_change(True, True, False) == cs.RESUME
    state.set_upstream_paused(True)
    assert state.reading_change(True, True, False) == cs.PAUSE  # backend buffer full
    state.set_upstream_paused(False)
    assert state.reading_change(True, True, False) == cs.RESUME


def test_dead_parser_stops_reading_for_good() -> None:
    state, _ = busy()
    state.stream_broken(0)
    assert state.reading_change(False, False, False) == cs.PAUSE
    assert state.reading_change(True, True, False) == cs.KEEP


def test_closing_connection_is_left_alone() -> None:
    state, _ = busy()
    state.close()
    assert state.reading_change(False, False, True) == cs.KEEP


# -- timeouts ------------------------------------------------------------


def test_timeout_while_idle_closes_silently() -> None:
    state, _ = busy()
    state.exchange_done(False, False, NOTHING_QUEUED, b"")
    assert state.timed_out(False, False, False) == cs.CLOSE_IDLE


def test_timeout_of_a_slow_head_answers_408() -> None:
    state, _ = fresh()
    assert state.timed_out(False, False, False) == cs.ANSWER_408


def test_timeout_while_connecting_counts_as_a_failed_connect() -> None:
    state, _ = busy()
    assert state.timed_out(True, True, True) == cs.CONNECT_FAILED


def test_timeout_of_a_body_being_read_is_the_clients_fault() -> None:
    state, _ = busy()
    assert state.timed_out(True, False, True) == cs.BODY_408


def test_timeout_of_a_body_not_being_read_is_the_backends() -> None:
    state, _ = busy()
    state.reading_change(True, False, False)  # paused: waiting for the backend
    assert state.timed_out(True, False, True) == cs.GATEWAY_TIMEOUT


def test_timeout_waiting_for_the_answer_is_504() -> None:
    state, _ = busy()
    assert state.timed_out(True, False, False) == cs.GATEWAY_TIMEOUT


def test_timeout_of_a_tunnel_closes_it_and_of_a_closing_connection_does_nothing() -> None:
    state, _ = busy()
    state.tunnel_opened(1.0)
    assert state.timed_out(True, False, False) == cs.CLOSE_TUNNEL
    state, _ = busy()
    state.close()
    assert state.timed_out(True, False, False) == cs.NOTHING


# -- invariants over any sequence of events ------------------------------------------------

EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("read")),
        st.tuples(st.just("stream_broken"), st.sampled_from([0, 400, 431])),
        st.tuples(st.just("client_eof"), st.booleans(), st.booleans()),
        st.tuples(
            st.just("expect_backend"),
            st.floats(1, 100),
            st.floats(1, 100),
            st.one_of(st.none(), st.floats(1, 100)),
        ),
        st.tuples(st.just("touch")),
        st.tuples(
            st.just("exchange_done"),
            st.booleans(),
            st.booleans(),
            st.sampled_from([NOTHING_QUEUED, QUEUED]),
            st.sampled_from([b"", STASH]),
        ),
        st.tuples(st.just("tunnel_opened"), st.floats(1, 100)),
        st.tuples(st.just("close")),
        st.tuples(st.just("set_upstream_paused"), st.booleans()),
        st.tuples(st.just("reading_change"), st.booleans(), st.booleans(), st.booleans()),
        st.tuples(st.just("tick"), st.floats(0, 50)),
    ),
    max_size=40,
)


@given(EVENTS)
def test_invariants_hold_after_any_sequence_of_events(events: list[tuple[object, ...]]) -> None:
    state, clock = fresh()
    dead = half = closing = False
    for name, *args in events:
        if name == "tick":
            clock.now += args[0]  # type: ignore[operator]
        else:
            getattr(state, str(name))(*args)
        # closing is exactly the TUNNEL and CLOSED phases, and never ends
        assert state.closing == (state.phase in (cs.TUNNEL, cs.CLOSED))
        assert state.closing or not closing
        closing = state.closing
        # a hard deadline only while an exchange runs (or after the close)
        assert state.hard_deadline == cs.NEVER or state.phase in (cs.BUSY, cs.CLOSED)
        # an open connection always has a timer running
        assert state.closing or state.deadline < cs.NEVER
        # a broken stream and a half-close are for good, and both close every answer
        assert state.parser_dead or not dead
        assert state.half_closed or not half
        dead, half = state.parser_dead, state.half_closed
        if dead or half:
            assert state.must_close(True, True, False)
