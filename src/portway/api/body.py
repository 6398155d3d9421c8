"""Request bodies: read with a size limit (on the event loop, bytes only), then decoded
with token and depth limits (in the thread pool, with the handler).

A thread does not shield the event loop from a long C call: json.loads holds the GIL
until it returns. The token count bounds that call to milliseconds before it starts.

json.loads recurses once per nesting level and raises RecursionError near 1 000 levels;
the depth is therefore measured first, without recursion and at C speed: strings are cut
out, everything but brackets is deleted, and innermost pairs are peeled off MAX_DEPTH
times. Whatever is left is nested deeper than MAX_DEPTH (or unbalanced, which json.loads
would refuse anyway).
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request

from portway.api.errors import PayloadTooLargeError
from portway.errors import MalformedError

MAX_BODY = 1024 * 1024
MAX_DEPTH = 32  # our deepest schema is 4 levels; room for clients that wrap more
# Quotes, commas and opening brackets: about three per value. The largest body we accept
# (a proxy with MAX_BACKENDS backends, every field given) has 15 000; 1 MiB of "[]," has
# 600 000 and would hold the GIL, so stall the event loop, for 0.25 s in json.loads.
MAX_TOKENS = 20_000

# A string to its closing quote, or to the end of the body when unterminated: it always
# matches, so the scan never backtracks over the rest of the body (stays linear).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")  # one kind of pair: one level peeled per pass


def _too_deep(raw: bytes) -> bool:
    brackets = _STRING.sub(b"", raw).translate(_SQUARE, _NOT_BRACKETS)
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        # replace() does not rescan what it produced, so each pass removes one level.
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_body(request: Request) -> bytes:
    """The raw body, refusing more than MAX_BODY bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared and declared.isascii() and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLargeError(f"the body is larger than {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLargeError(f"the body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json(raw: bytes) -> Any:
    """``raw`` as JSON (RFC 8259: no NaN or Infinity), at most MAX_DEPTH levels deep and
    MAX_TOKENS tokens long, so that decoding it takes milliseconds."""
    if not raw.strip():
        raise MalformedError("a JSON body is required", field="body")
    tokens = sum(raw.count(c) for c in (b'"', b",", b"[", b"{"))
    if tokens > MAX_TOKENS:
        raise MalformedError(
            f"the body has more than {MAX_TOKENS} JSON tokens (quotes, commas, brackets)",
            field="body",
        )
    if _too_deep(raw):
        raise MalformedError(f"the body is nested deeper than {MAX_DEPTH} levels", field="body")
    try:
        return json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedError(f"malformed JSON: {err}", field="body") from None
