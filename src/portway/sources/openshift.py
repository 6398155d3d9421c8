"""OpenShift 2.x routing events from an ActiveMQ destination over STOMP (compat.md §3).

The source connects with STOMP 1.2, heart-beats both ways and a ``client-individual``
subscription, and handles one message at a time, in order:

- a message that cannot be read (``routing_spi.MalformedEvent``) is acknowledged, logged
  with its message id and counted "malformed", so it never blocks the queue;
- an endpoint whose types or protocols are not routed is acknowledged, "ignored";
- otherwise the event goes to ``OpenShiftRoutes.apply`` in a worker thread, and the
  message is acknowledged only after ``apply`` returned (the change is committed):
  "applied". A refusal of this one event (a key the pass phrase does not decrypt, an
  alias another application holds) is acknowledged and logged: "refused";
- any other failure (the store busy or down) leaves the message unacknowledged:
  "retried". The source drops the connection and subscribes again after a back-off,
  and the broker redelivers every unacknowledged message, in order. It never sends
  NACK: ActiveMQ 5.17's default policy moves a NACKed message to ``ActiveMQ.DLQ`` at
  once, which would lose the event.

A ``/topic/...`` destination is subscribed durably (``client-id`` and
``activemq.subscriptionName``), so events published while Portway is away wait for it; a
``/queue/...`` subscription is exclusive, so several nodes sharing one store take turns
instead of applying events out of order. Lost connections (heart-beat timeouts
included) are retried with back-off for as long as the node runs: stomp.py's own
reconnect loop is bounded, so each attempt makes a fresh connection here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import socket
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import stomp
import stomp.exception

from portway.errors import (
    ConfigError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PortwayError,
)
from portway.errors import ValidationError as _Invalid
from portway.protocol.routing_spi import MalformedEvent, RoutingEvent, action_name, parse_event
from portway.runtime.config import StompUrl
from portway.sources.base import DOWN, STARTING, UP
from portway.sources.openshift_routes import OpenShiftPolicy, OpenShiftRoutes, ignored_reason

if TYPE_CHECKING:
    from portway.runtime.config import ServeConfig

log = logging.getLogger("portway.sources.openshift")


class _OneLine(logging.Filter):
    """stomp.py logs a traceback when a send meets a closed socket (a broker restart),
    then raises that error, which this source reports in its own words ("ack of ...
    lost"): its line stays, without the traceback that reads like a crash of Portway's."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info = None
        record.exc_text = None
        return True


STOMP_LOG_FILTER = _OneLine()
logging.getLogger("stomp.py").addFilter(STOMP_LOG_FILTER)

# Refusals of one event: acknowledged and logged, never retried.
_REFUSALS = (_Invalid, ConflictError, ForbiddenError, NotFoundError)
_SUBSCRIPTION = "portway-openshift"


@dataclass(frozen=True, kw_only=True, slots=True)
class OpenShiftSettings:
    url: StompUrl
    policy: OpenShiftPolicy
    client_id: str
    heartbeat: float = 10.0  # seconds between heart-beats, both ways
    prefetch: int = 100  # unacknowledged messages the broker may send ahead
    connect_timeout: float = 10.0
    backoff: float = 0.5  # first pause before reconnecting; doubles up to max_backoff
    max_backoff: float = 30.0


def openshift_settings(config: ServeConfig) -> OpenShiftSettings | None:
    """The source's settings from ``portway serve``'s, or None when it is off."""
    url = config.openshift_stomp
    if url is None:
        return None
    if config.openshift_domain is None:
        raise ConfigError("--openshift-domain is required with --openshift-stomp")
    if config.openshift_stomp_password_file is not None:
        try:
            password = config.openshift_stomp_password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"--openshift-stomp-password-file: {exc.strerror or exc}") from None
        url = StompUrl(
            host=url.host,
            port=url.port,
            destination=url.destination,
            username=url.username,
            password=password,
        )
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:90]
    return OpenShiftSettings(
        url=url,
        policy=OpenShiftPolicy(
            domain=config.openshift_domain, endpoint_types=config.openshift_endpoint_types
        ),
        client_id=config.openshift_client_id or f"portway-{host}",
    )


class Retry(Exception):
    """A message must be delivered again: drop the connection, then subscribe again."""


class OpenShiftSource:
    """Consumes routing events; ``state`` is "up" while subscribed."""

    name = "openshift"

    def __init__(self, routes: OpenShiftRoutes, settings: OpenShiftSettings) -> None:
        self._routes = routes
        self._settings = settings
        self.state = STARTING
        self.outcomes: dict[str, int] = {}  # applied, malformed, ignored, refused, retried

    async def run(self) -> None:
        connect_backoff = _Backoff(self._settings)
        retry_backoff = _Backoff(self._settings)  # grows while the same failure repeats
        while True:
            session = _Session(self._settings, asyncio.get_running_loop())
            try:
                await asyncio.to_thread(session.start)
                self.state = UP
                connect_backoff.reset()
                log.info("subscribed to %s as %s", self._settings.url, self._settings.client_id)
                await self._consume(session, retry_backoff)
            except Retry as exc:
                bug = not isinstance(exc.__cause__, PortwayError)  # a traceback helps then
                log.warning("%s; subscribing again for redelivery", exc, exc_info=bug)
                delay = retry_backoff.next()
            except (stomp.exception.StompException, OSError) as exc:
                log.warning("STOMP %s: %s", self._settings.url, _reason(exc))
                delay = connect_backoff.next()
            finally:
                await asyncio.to_thread(session.close)
            self.state = DOWN
            await asyncio.sleep(delay)

    async def _consume(self, session: _Session, retry_backoff: _Backoff) -> None:
        while True:
            frame = await session.inbox.get()
            if frame is None:
                raise stomp.exception.ConnectionClosedException("connection lost")
            if await self._handle(session, frame) == "applied":
                retry_backoff.reset()

    async def _handle(self, session: _Session, frame: Any) -> str:
        message_id = str(frame.headers.get("message-id", "?"))
        event = parse_event(frame.body)
        if isinstance(event, MalformedEvent):
            field = f" ({event.field})" if event.field else ""
            log.warning("message %s dropped, malformed%s: %s", message_id, field, event.reason)
            outcome = "malformed"
        elif (reason := ignored_reason(event, self._settings.policy)) is not None:
            log.info("message %s: endpoint ignored, %s", message_id, reason)
            outcome = "ignored"
        else:
            outcome = await self._apply(event, message_id)
        await asyncio.to_thread(session.ack, frame)
        self._count(outcome)
        return outcome

    async def _apply(self, event: RoutingEvent, message_id: str) -> str:
        try:
            await asyncio.to_thread(self._routes.apply, event, message_id)
        except _REFUSALS as exc:
            log.warning("message %s (%s) refused: %s", message_id, action_name(event), exc)
            return "refused"
        except Exception as exc:
            # Anything else may pass: the store busy or down, a transient error.
            self._count("retried")
            raise Retry(f"message {message_id} ({action_name(event)}): {_reason(exc)}") from exc
        return "applied"

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1


class _Backoff:
    def __init__(self, settings: OpenShiftSettings) -> None:
        self._first, self._max = settings.backoff, settings.max_backoff
        self._next = self._first

    def next(self) -> float:
        delay, self._next = self._next, min(self._next * 2, self._max)
        return delay * (0.5 + random.random() / 2)

    def reset(self) -> None:
        self._next = self._first


class _Session(stomp.ConnectionListener):  # type: ignore[misc]
    """One STOMP connection and subscription. stomp.py calls the listener methods on its
    receiver thread; frames reach the event loop through ``inbox`` (None: connection
    gone), in the order the broker sent them."""

    def __init__(self, settings: OpenShiftSettings, loop: asyncio.AbstractEventLoop) -> None:
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._settings = settings
        self._loop = loop
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._error = ""
        beat = int(settings.heartbeat * 1000)
        self._conn = stomp.Connection12(
            [(settings.url.host, settings.url.port)],
            heartbeats=(beat, beat),
            heart_beat_receive_scale=2.0,
            reconnect_attempts_max=1,
            timeout=settings.connect_timeout,
            auto_decode=False,  # the parser decides what bad bytes mean
        )
        self._conn.set_listener("portway", self)

    def start(self) -> None:
        """Connect and subscribe (blocking: run it in a worker thread)."""
        settings = self._settings
        url = settings.url
        headers = {"client-id": settings.client_id} if url.topic else {}
        self._conn.connect(url.username, url.password, wait=False, headers=headers)
        self._wait(self._connected, settings.connect_timeout, "CONNECTED")
        sub = {"activemq.prefetchSize": str(settings.prefetch)}
        if url.topic:
            sub["activemq.subscriptionName"] = settings.client_id
        else:
            sub["activemq.exclusive"] = "true"
        self._conn.subscribe(
            url.destination,
            id=_SUBSCRIPTION,
            ack="client-individual",
            headers=sub,
            receipt=_SUBSCRIPTION,
        )
        self._wait(self._subscribed, settings.connect_timeout, "the subscription receipt")

    def _wait(self, event: threading.Event, timeout: float, what: str) -> None:
        if not event.wait(timeout) or self._error:
            reason = self._error or f"no {what} within {timeout:g}s"
            raise stomp.exception.ConnectFailedException(reason)

    def ack(self, frame: Any) -> None:
        try:
            self._conn.ack(frame.headers["ack"])
        except (stomp.exception.StompException, OSError) as exc:
            # The change is committed; the broker redelivers the message, which is harmless.
            log.info("ack of %s lost: %s", frame.headers.get("message-id"), _reason(exc))

    def close(self) -> None:
        with contextlib.suppress(stomp.exception.StompException, OSError):
            self._conn.disconnect()
        self._conn.transport.disconnect_socket()

    # stomp.py listener callbacks (receiver and heart-beat threads)

    def on_connected(self, frame: Any) -> None:
        self._connected.set()

    def on_receipt(self, frame: Any) -> None:
        if frame.headers.get("receipt-id") == _SUBSCRIPTION:
            self._subscribed.set()

    def on_error(self, frame: Any) -> None:
        self._error = str(frame.headers.get("message") or "ERROR frame").strip()
        log.warning("broker error: %s", self._error)
        self._connected.set()
        self._subscribed.set()

    def on_message(self, frame: Any) -> None:
        self._post(frame)

    def on_heartbeat_timeout(self) -> None:
        log.warning("no heart-beat from the broker: connection considered lost")

    def on_disconnected(self) -> None:
        self._error = self._error or "connection closed"
        self._connected.set()
        self._subscribed.set()
        self._post(None)

    def _post(self, item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the node is stopping
            self._loop.call_soon_threadsafe(self.inbox.put_nowait, item)


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
