"""Flow control and timeouts of a client connection.

:class:`Pacing` sits between ``downstream`` (the exchange side) and ``client`` (parsing
and the asyncio callbacks). Reading is driven by :meth:`Pacing._update_reading` from the
state alone, so the three reasons to pause (waiting for a response, no upstream bound
yet, upstream write buffer full) cannot fight each other; a client that reads slower
than the backend sends pauses the backend instead. :meth:`Pacing.on_timeout` is what the
data plane's sweep calls once a connection's ``deadline`` or ``hard_deadline`` passed:
which answer that gets (close, 408, 502, 504) depends on what the connection was doing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portway.dataplane.answers import answer_and_close, fail_current
from portway.dataplane.downstream import Downstream
from portway.dataplane.exchange import Exchange
from portway.dataplane.responding import IDLE
from portway.health.passive import Outcome

if TYPE_CHECKING:
    from portway.dataplane.server import DataPlane


class Pacing(Downstream):
    __slots__ = ("_reading", "receiving")

    def __init__(self, dp: DataPlane) -> None:
        super().__init__(dp)
        self.receiving: Exchange | None = None  # the request whose body is arriving
        self._reading = True  # what was last asked of the transport

    # -- flow control ------------------------------------------------------------

    def pause_writing(self) -> None:
        # The client reads slower than the backend sends: stop reading the backend.
        ex = self.current
        if ex is not None and ex.upstream is not None and ex.upstream.transport is not None:
            ex.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        self.deadline = self.dp.now + self.idle
        ex = self.current
        if ex is not None and ex.upstream is not None and ex.upstream.transport is not None:
            ex.upstream.transport.resume_reading()

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or self.closing:
            return
        receiving = self.receiving
        if self._parser_is_dead:
            want = False
        elif receiving is not None:
            up = receiving.upstream
            want = receiving is self.current and up is not None and not self._upstream_paused
        else:
            want = not self._stash
        if want != self._reading:
            self._reading = want
            if want:
                transport.resume_reading()
            else:
                transport.pause_reading()

    # -- timeouts ------------------------------------------------------------

    def on_timeout(self) -> None:
        """Called by the data plane's sweep once ``deadline`` or ``hard_deadline`` passed."""
        if self.tunnel is not None:
            self.tunnel.close()  # WebSocket idle timeout
            return
        if self.closing:
            return
        ex = self.current
        if self.state == IDLE:
            self._close()
        elif ex is None:
            answer_and_close(self, 408)
        elif ex.connect_task is not None:
            ex.connect_task.cancel()  # connect timeout: like a refused connection
            ex.connect_task = None
            self._backend_failed(ex, 502, Outcome.CONNECT_FAILED)
        elif self.receiving is ex and self._reading and not ex.response_started:
            # The client stopped sending the body it declared: its fault, not the backend's.
            fail_current(self, 408)
            self.flush()
        else:
            if not ex.response_started and ex.plan is not None and ex.backend is not None:
                self.dp.plans.report(ex, Outcome.TIMED_OUT, self.dp.now)
            fail_current(self, 504)
            self.flush()
