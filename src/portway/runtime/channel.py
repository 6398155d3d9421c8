"""One end of a control ↔ worker pipe on the event loop, where no call ever blocks.

The descriptor is non-blocking. Reads take what the pipe holds and hand whole messages
on; writes go out as the peer takes them (``add_writer``), one frame at a time, and what
waits behind that frame waits in a ``Mailbox`` as messages, not bytes, so that a peer
that stops reading costs one frame in flight and at most one message per kind. A
message may be encoded off the loop: ``encode`` then returns a future of its frame.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

from portway.runtime.framing import FrameDecoder, Mailbox, encode, newest

log = logging.getLogger("portway.workers")

Encoder = Callable[[object], "bytes | asyncio.Future[bytes]"]
_READ_SIZE = 1 << 20


class PipeChannel:
    """Messages in and out of one pipe end; ``on_closed`` once the peer is gone."""

    def __init__(
        self,
        conn: Connection,
        on_message: Callable[[object], None],
        *,
        on_closed: Callable[[], None] | None = None,
        encoder: Encoder = encode,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = conn
        self._fd = conn.fileno()
        self._loop = asyncio.get_running_loop()
        self._on_message = on_message
        self._on_closed = on_closed
        self._encode = encoder
        self._clock = clock
        self._decoder = FrameDecoder()
        self._mailbox: Mailbox[object] = Mailbox()
        self._out: memoryview | None = None  # the frame being written, from where it stopped
        self._encoding = False
        self._writing = False  # add_writer is on
        self._blocked_since: float | None = None
        self.closed = False
        os.set_blocking(self._fd, False)
        self._loop.add_reader(self._fd, self._on_readable)

    def send(
        self,
        kind: str,
        message: object,
        merge: Callable[[object, object], object] = newest,
    ) -> None:
        """Queue ``message``; one of the same ``kind`` not yet started merges with it."""
        if not self.closed:
            self._mailbox.put(kind, message, merge)
            self._pump()

    def blocked_for(self) -> float:
        """Seconds that bytes have waited for the peer without any being taken."""
        since = self._blocked_since
        return 0.0 if since is None else self._clock() - since

    @property
    def idle(self) -> bool:
        """Nothing is being written or waits to be."""
        return self._out is None and not self._encoding and not len(self._mailbox)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._loop.remove_reader(self._fd)
        if self._writing:
            self._loop.remove_writer(self._fd)
        self._conn.close()

    # -- writing --------------------------------------------------------------

    def _pump(self) -> None:
        """Start on the next waiting message while the pipe has nothing in flight."""
        while self._out is None and not self._encoding and not self.closed:
            message = self._mailbox.take()
            if message is None:
                return
            frame = self._encode(message)
            if isinstance(frame, bytes):
                self._out = memoryview(frame)
                self._flush()
            else:
                self._encoding = True
                frame.add_done_callback(self._on_encoded)

    def _on_encoded(self, frame: asyncio.Future[bytes]) -> None:
        self._encoding = False
        if self.closed or frame.cancelled():
            return
        error = frame.exception()
        if error is not None:
            log.error("a message for a worker could not be encoded: %r", error)
        else:
            self._out = memoryview(frame.result())
            self._flush()
        self._pump()

    def _flush(self) -> None:
        out = self._out
        assert out is not None
        moved = False
        while out:
            try:
                n = os.write(self._fd, out)
            except BlockingIOError:
                break
            except OSError:  # the peer is gone
                self._peer_gone()
                return
            out, moved = out[n:], True
        if out:
            self._out = out
            if moved or self._blocked_since is None:
                self._blocked_since = self._clock()
            if not self._writing:
                self._loop.add_writer(self._fd, self._on_writable)
                self._writing = True
            return
        self._out = None
        self._blocked_since = None
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False

    def _on_writable(self) -> None:
        if self._out is not None and not self.closed:
            self._flush()
        self._pump()

    # -- reading --------------------------------------------------------------

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._peer_gone()
            return
        for message in self._decoder.feed(data):
            if self.closed:
                return
            self._on_message(message)

    def _peer_gone(self) -> None:
        self.close()
        if self._on_closed is not None:
            self._on_closed()
