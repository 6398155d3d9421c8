"""One request/response pair on a client connection."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from portway.protocol.request import RequestHead

if TYPE_CHECKING:
    from portway.dataplane.pool import Bucket
    from portway.dataplane.upstream import UpstreamConnection


class Exchange:
    """A parsed request waiting for, or bound to, an upstream connection.

    ``pending`` holds body bytes (already framed for the backend) read before an upstream
    connection was bound; reading pauses whenever it is used, so it stays small.
    """

    __slots__ = (
        "body_done",
        "bucket",
        "close_after",
        "connect_task",
        "encoded",
        "head",
        "pending",
        "response_started",
        "retried",
        "upstream",
    )

    def __init__(self, head: RequestHead) -> None:
        self.head = head
        self.pending: list[bytes] = []
        self.body_done = False
        self.upstream: UpstreamConnection | None = None
        self.bucket: Bucket[Any] | None = None
        self.connect_task: asyncio.Future[Any] | None = None
        self.encoded = b""
        self.response_started = False
        self.close_after = False
        self.retried = False
