"""The access log: one JSON object per request, written in batches.

Lines are appended to a list on the hot path and written with one ``write`` per
``flush_interval`` (or sooner when ``max_buffer`` lines are waiting), so logging costs a
``json.dumps`` and a list append per request instead of a syscall.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, TextIO


class AccessLog:
    __slots__ = ("_buffer", "_flush_interval", "_handle", "_loop", "_max_buffer", "_stream")

    def __init__(
        self, stream: TextIO | None = None, *, flush_interval: float = 0.1, max_buffer: int = 512
    ) -> None:
        self._stream = stream or sys.stdout
        self._buffer: list[str] = []
        self._flush_interval = flush_interval
        self._max_buffer = max_buffer
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def log(self, **entry: Any) -> None:
        entry.setdefault("time", time.time())
        self._buffer.append(json.dumps(entry, separators=(",", ":")))
        if len(self._buffer) >= self._max_buffer:
            self.flush()
        elif self._handle is None:
            loop = self._loop or asyncio.get_running_loop()
            self._loop = loop
            self._handle = loop.call_later(self._flush_interval, self.flush)

    def close(self) -> None:
        """Flush and close the file (never standard output), as when SIGHUP reopens it."""
        self.flush()
        if self._stream not in (sys.stdout, sys.__stdout__):
            self._stream.close()

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._buffer:
            self._stream.write("\n".join(self._buffer) + "\n")
            self._stream.flush()
            self._buffer.clear()
