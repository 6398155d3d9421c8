"""One request/response pair on a client connection."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from portway.protocol.request import RequestHead

if TYPE_CHECKING:
    from portway.dataplane.caching import Flow
    from portway.dataplane.plans import Plan
    from portway.dataplane.pool import Bucket
    from portway.dataplane.upstream import UpstreamConnection
    from portway.model import Backend


class Exchange:
    """A parsed request waiting for, or bound to, an upstream connection.

    ``pending`` holds body bytes (already framed for the backend) read before an upstream
    connection was bound; reading pauses whenever it is used, so it stays small.
    """

    __slots__ = (
        "backend",
        "body_done",
        "body_sent",
        "bucket",
        "bytes_out",
        "cache",
        "close_after",
        "connect_task",
        "counted",
        "encoded",
        "head",
        "pending",
        "plan",
        "received",
        "recorded",
        "response_started",
        "retried",
        "stale_retried",
        "started",
        "status",
        "upstream",
        "upstream_at",
        "ws_key",
    )

    def __init__(self, head: RequestHead, started: float) -> None:
        self.head = head
        self.started = started
        self.pending: list[bytes] | None = None  # (made on first use: most requests never do)
        self.body_done = False
        self.body_sent = False  # a body byte reached an upstream socket: no more retries
        self.received = 0  # body bytes read from the client
        self.bytes_out = 0  # bytes written to the client for this exchange
        self.recorded = False
        self.upstream: UpstreamConnection | None = None
        self.bucket: Bucket[Any] | None = None
        self.plan: Plan | None = None
        self.backend: Backend | None = None
        self.connect_task: asyncio.Future[Any] | None = None
        self.encoded = b""
        self.response_started = False
        self.close_after = False
        self.retried = False  # sent again on another backend
        self.stale_retried = False  # sent again after a pooled connection turned out dead
        self.counted = False  # added to the in-flight count of ``backend``
        self.status = 0
        self.upstream_at = 0.0  # when the first response byte arrived
        self.ws_key: bytes | None = None  # a validated WebSocket handshake's key
        self.cache: Flow | None = None  # only on proxies with cache.enabled
