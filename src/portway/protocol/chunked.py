"""Chunked transfer coding on the sending side (llhttp decodes the receiving side)."""

from __future__ import annotations

from typing import Final

LAST_CHUNK: Final = b"0\r\n\r\n"
CRLF: Final = b"\r\n"
# Read sizes repeat (socket buffer sizes), so most chunk-size lines come from this cache.
_SIZE_LINES: dict[int, bytes] = {}
_CACHE_LIMIT: Final = 1024


def size_line(size: int) -> bytes:
    """``b"1f40\\r\\n"`` for 8000: the line that opens a chunk of ``size`` bytes."""
    line = _SIZE_LINES.get(size)
    if line is None:
        line = b"%x\r\n" % size
        if len(_SIZE_LINES) < _CACHE_LIMIT:
            _SIZE_LINES[size] = line
    return line


def encode_chunk(data: bytes) -> tuple[bytes, bytes, bytes]:
    """The three pieces of one chunk, for ``writelines`` (no copy of ``data``)."""
    return (size_line(len(data)), data, CRLF)
