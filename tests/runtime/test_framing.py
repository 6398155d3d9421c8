"""The pipe's frames and mailbox, with values alone: a frame arrives whole however it is
cut, and a mailbox holds at most one message per kind."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from portway.runtime.framing import FrameDecoder, Mailbox, encode
from portway.runtime.worker_messages import Applied, HealthUpdate


@given(st.lists(st.integers(min_value=1, max_value=4096), min_size=1, max_size=50))
def test_frames_cut_anywhere_decode_whole_and_in_order(cuts: list[int]) -> None:
    messages = [Applied(version=1), HealthUpdate(down=frozenset({("p", "b")})), ["x"] * 3000]
    stream = b"".join(encode(m) for m in messages)
    decoder = FrameDecoder()
    got: list[object] = []
    at = 0
    for size in cuts:
        got += decoder.feed(stream[at : at + size])
        at += size
    got += decoder.feed(stream[at:])
    assert got == messages


def test_a_newer_message_replaces_the_waiting_one_of_its_kind() -> None:
    box: Mailbox[int] = Mailbox()
    box.put("snapshot", 1)
    box.put("health", 10)
    box.put("snapshot", 2)
    box.put("snapshot", 3, lambda waiting, newer: waiting * 100 + newer)
    assert len(box) == 2
    assert [box.take(), box.take(), box.take()] == [203, 10, None]
