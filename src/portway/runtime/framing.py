"""Sans-IO parts of the control ↔ worker pipe: frames, and what waits to be written.

A frame is an 8-byte big-endian length and a pickle. Both ends are our own processes
(the worker is spawned by the control process with the same code), so unpickling what
the peer sends is no new trust.

``Mailbox`` holds the messages not yet written, at most one per kind: a newer message
replaces the waiting one of its kind, or merges with it (snapshots). So whatever a slow
peer has not read yet costs at most one message per kind, however much is published.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

_HEADER = struct.Struct("!Q")


def encode(message: object) -> bytes:
    """One frame: the length, then the pickle."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


class FrameDecoder:
    """Bytes in, whole messages out; a frame may arrive in any number of pieces."""

    __slots__ = ("_buffer", "_need")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._need = 0  # body length of the frame being read, 0 while reading a header

    def feed(self, data: bytes) -> list[object]:
        """The messages completed by ``data``, oldest first."""
        self._buffer += data
        out: list[object] = []
        while True:
            if not self._need:
                if len(self._buffer) < _HEADER.size:
                    return out
                (self._need,) = _HEADER.unpack_from(self._buffer)
                del self._buffer[: _HEADER.size]
            if len(self._buffer) < self._need:
                return out
            body = memoryview(self._buffer)[: self._need]
            try:
                out.append(pickle.loads(body))
            finally:
                body.release()  # a bytearray with a live view cannot be resized
            del self._buffer[: self._need]
            self._need = 0


def newest(_waiting: T, newer: T) -> T:
    """The default merge: the newer message replaces the waiting one."""
    return newer


class Mailbox(Generic[T]):
    """Messages waiting to be written, at most one per kind, oldest kind first."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: dict[str, T] = {}

    def put(self, kind: str, message: T, merge: Callable[[T, T], T] = newest) -> None:
        """Wait ``message``; one of the same kind waiting already becomes
        ``merge(waiting, message)`` (by default the newer one) and keeps its place."""
        waiting = self._waiting.get(kind)
        self._waiting[kind] = message if waiting is None else merge(waiting, message)

    def take(self) -> T | None:
        """The message to write next, or None when nothing waits."""
        for kind in self._waiting:
            return self._waiting.pop(kind)
        return None

    def __len__(self) -> int:
        return len(self._waiting)
