"""A client connection's state machine, sans-IO: every state, deadline and close rule.

Rule: everything that decides what state a client connection is in, when it times out
and whether it closes lives here (h11's ``_state.py`` rule). :class:`ConnState` holds no
transport, parser or exchange: its methods take plain values and return a decision as
a small int, which :class:`~portway.dataplane.client.ClientConnection` carries out. The
only outside input is a clock (anything with a ``now`` float: the data plane, whose
sweep advances it; a fake one in tests).

Phases and transitions (``deadline`` is what the data plane's sweep compares with
``now``; ``idle`` is the current proxy's idle timeout; "header" and "keepalive" are the
node's ``client_header_timeout`` and ``keepalive_timeout``)::

    phase   event                                  next    deadline
    -----   -------------------------------------  ------  --------------------------
    (new)   connection accepted                    HEAD    now + header
    IDLE    bytes arrive (read)                    HEAD    now + header   (slowloris)
    HEAD    more bytes arrive                      HEAD    unchanged
    HEAD    its request goes to a backend          BUSY    now + connect | first byte
            (expect_backend)                               | idle; hard_deadline = now + total
    BUSY    the backend's next step (expect_backend) BUSY  now + first byte (body sent) ...
    BUSY    bytes arrive (body, pipelined heads)   BUSY    now + idle
    BUSY    backend or client activity (touch)     BUSY    now + idle
    BUSY    exchange done, must close              CLOSED  -
    BUSY    exchange done, a head or request waits HEAD*   now + header
    BUSY    exchange done, nothing waits           IDLE    now + keepalive
    BUSY    a validated 101 (tunnel_opened)        TUNNEL  now + WebSocket idle
    TUNNEL  bytes either way (touch)               TUNNEL  now + WebSocket idle
    any     close, refusal, connection lost        CLOSED  -

    * BUSY when the waiting request is already parsed (it starts at once).

A parsed head does not change the phase by itself: its request goes to a backend (or is
answered) before the read's callback returns, and a pipelined one waits while BUSY
anyway. The end of a request's body sets the first-byte deadline (``expect_backend``)
after ``read``, which is why ``read`` runs before the parse.

Invariants:

- ``closing`` is True exactly in TUNNEL and CLOSED: the HTTP side is over.
- ``hard_deadline`` is finite only while an exchange with a total timeout runs.
- ``reading`` is what was last asked of the transport (pause or resume).
- ``parser_dead`` and ``half_closed`` never go back to False; once either is set, every
  answer says ``Connection: close`` and the connection closes after it (:meth:`must_close`
  is the one keep-alive rule, used by backend answers and the proxy's own alike).
- ``owed`` (a status) is answered, then the connection closes, once no request is
  left to answer.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, Protocol

from portway.dataplane.settings import DataPlaneSettings

# Phases.
IDLE: Final = 0  # keep-alive: waiting for the first byte of a request
HEAD: Final = 1  # a request head is arriving: the slowloris timer runs
BUSY: Final = 2  # an exchange is in flight (or a parsed request is about to start)
TUNNEL: Final = 3  # spliced to a backend after a WebSocket 101
CLOSED: Final = 4

NEVER: Final = float("inf")

# Decisions of exchange_done().
CLOSE: Final = 1  # close the connection (after flushing)
FEED_STASH: Final = 2  # parse the bytes held back while the answer was pending
START_NEXT: Final = 3  # start the next parsed request, or answer ``owed``
WAIT: Final = 4  # nothing to do until the client sends more

# Decisions of reading().
KEEP: Final = 0
PAUSE: Final = 1
RESUME: Final = 2

# Decisions of timed_out().
NOTHING: Final = 0
CLOSE_TUNNEL: Final = 1  # WebSocket idle timeout
CLOSE_IDLE: Final = 2  # keep-alive timeout: close silently
ANSWER_408: Final = 3  # the head did not arrive in time: 408 outside any exchange, close
CONNECT_FAILED: Final = 4  # connect timeout: like a refused connection (retry, else 502)
BODY_408: Final = 5  # the client stopped sending the body it declared: 408
GATEWAY_TIMEOUT: Final = 6  # the backend is too slow: 504


class Clock(Protocol):
    """The time source: the data plane's ``now``, advanced by its sweep."""

    @property
    def now(self) -> float: ...


class ConnState:
    """One client connection's phase, deadlines and close rules (see the module doc)."""

    __slots__ = (
        "clock",
        "closing",
        "deadline",
        "half_closed",
        "hard_deadline",
        "head_timeout",
        "idle",
        "keepalive_timeout",
        "owed",
        "parser_dead",
        "phase",
        "reading",
        "upstream_paused",
    )

    def __init__(self, clock: Clock, settings: DataPlaneSettings) -> None:
        self.clock = clock
        self.head_timeout = settings.client_header_timeout  # (copied: read once per request)
        self.keepalive_timeout = settings.keepalive_timeout
        self.phase = HEAD
        self.closing = False
        self.deadline = clock.now + settings.client_header_timeout
        self.hard_deadline = NEVER  # the proxy's total timeout for the current exchange
        self.idle = settings.read_timeout  # the current proxy's idle timeout
        self.reading = True
        self.upstream_paused = False  # the backend's write buffer is full
        self.parser_dead = False  # the request stream cannot be parsed any further
        self.half_closed = False  # the client sent EOF while its answer was pending
        self.owed = 0  # a status to answer, then close, once no request is left

    # -- request side ------------------------------------------------------------

    def read(self) -> None:
        """Bytes arrived from the client (called before they are parsed, so that what the
        parse leads to, such as the end of a body, sets the deadline last)."""
        phase = self.phase
        if phase == IDLE:
            self.phase = HEAD
            self.deadline = self.clock.now + self.head_timeout
        elif phase == BUSY:
            self.deadline = self.clock.now + self.idle

    def stream_broken(self, owed: int) -> None:
        """The parser stopped for good; ``owed`` (or 0) is answered after the queue."""
        self.parser_dead = True
        if owed:
            self.owed = owed

    def client_eof(self, in_flight: bool, queued: bool) -> bool:
        """The client half-closed. True: keep the transport open and close after the
        pending answer; False: close now (nothing to answer, or answers it cannot read)."""
        if in_flight and not queued:
            self.half_closed = True
            return True
        return False

    # -- exchange side ------------------------------------------------------------

    def expect_backend(self, timeout: float, idle: float, total: float | None) -> None:
        """The next step is the backend's (connect, first byte of the answer, the rest of
        the exchange) within ``timeout``; ``idle`` and ``total`` are the proxy's. An
        exchange's first such step makes the connection BUSY and starts its total timer,
        which later steps (a retry, the body's end) leave running."""
        if self.closing:
            return
        now = self.clock.now
        self.phase = BUSY
        self.idle = idle
        if total is not None and self.hard_deadline == NEVER:
            self.hard_deadline = now + total
        self.deadline = now + timeout

    def touch(self) -> None:
        """Bytes moved (backend, client draining, tunnel): the idle timer restarts."""
        self.deadline = self.clock.now + self.idle

    def must_close(self, keep_alive: bool, body_done: bool, draining: bool) -> bool:
        """The one keep-alive rule: does the answer to the current request close?

        ``keep_alive`` is what the request asked for, ``body_done`` whether its body was
        read to the end (if not, the stream cannot be resynced), ``draining`` whether
        the node is shutting down."""
        return not keep_alive or not body_done or self.parser_dead or self.half_closed or draining

    def exchange_done(
        self, close: bool, head_pending: bool, queued: Collection[object], stash: bytes
    ) -> int:
        """The current answer is complete. ``close``: the answer said so (or the body
        was not read to its end); ``head_pending``: a head is half-parsed; ``queued``:
        the parsed requests waiting; ``stash``: the bytes held back unparsed."""
        self.hard_deadline = NEVER
        if close or self.half_closed or self.closing:
            return CLOSE
        if head_pending or queued:
            self.phase = HEAD if head_pending else BUSY
            self.deadline = self.clock.now + self.head_timeout
        else:
            self.phase = IDLE
            self.deadline = self.clock.now + self.keepalive_timeout
        if stash:
            return FEED_STASH
        if queued or self.owed:
            return START_NEXT
        return WAIT

    def tunnel_opened(self, idle: float) -> None:
        """A validated WebSocket 101 went out; from now on only the tunnel's timer runs."""
        self.phase = TUNNEL
        self.closing = True  # the HTTP side of this connection is over
        self.hard_deadline = NEVER
        self.idle = idle
        self.deadline = self.clock.now + idle

    def close(self) -> None:
        """Closing (by choice, refusal or loss): nothing more is read or answered."""
        self.phase = CLOSED
        self.closing = True

    # -- flow control and time ------------------------------------------------------------

    def set_upstream_paused(self, paused: bool) -> None:
        self.upstream_paused = paused

    def reading_change(self, receiving: bool, flowing: bool, stash: bool) -> int:
        """PAUSE, RESUME or KEEP the client's reading. ``receiving``: a request body is
        arriving; ``flowing``: it is the current request's and a backend takes it;
        ``stash``: bytes are held back. The three reasons to pause (an answer pending,
        no backend bound yet, the backend's buffer full) are decided here together, so
        they cannot fight each other."""
        if self.closing:
            return KEEP
        if self.parser_dead:
            want = False
        elif receiving:
            want = flowing and not self.upstream_paused
        else:
            want = not stash
        if want == self.reading:
            return KEEP
        self.reading = want
        return RESUME if want else PAUSE

    def expired(self, now: float) -> bool:
        return self.deadline <= now or self.hard_deadline <= now

    def timed_out(self, in_flight: bool, connecting: bool, body_pending: bool) -> int:
        """What an expired deadline means. ``in_flight``: an exchange is current;
        ``connecting``: its backend connection is not up yet; ``body_pending``: its body
        is still arriving and no answer has started."""
        if self.phase == TUNNEL:
            return CLOSE_TUNNEL
        if self.closing:
            return NOTHING
        if self.phase == IDLE:
            return CLOSE_IDLE
        if not in_flight:
            return ANSWER_408
        if connecting:
            return CONNECT_FAILED
        if body_pending and self.reading:
            return BODY_408  # we were reading: the client's fault, not the backend's
        return GATEWAY_TIMEOUT
