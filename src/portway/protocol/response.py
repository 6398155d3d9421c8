"""The response side: what a backend's head says and how it is re-framed for the client.

Framing rules (RFC 9112 §6.3), in order: a 1xx is interim; a response to HEAD and any
204 or 304 has no body; ``Transfer-Encoding: chunked`` (alone) is chunked; a single
Content-Length is a length; otherwise the body runs until the backend closes. Anything
else (CL+TE, several Content-Length, a coding other than chunked) is ambiguous: the
client gets 502 and the connection is never reused.

Bodies that arrive chunked or close-delimited are sent to HTTP/1.1 clients re-chunked,
so the client connection stays reusable (re-chunking costs a size line per read, far
less than a new TCP handshake); HTTP/1.0 clients cannot read chunks, so they get the raw
body and the connection closes at its end.
"""

from __future__ import annotations

from typing import Final

from portway.errors import RemoteProtocolError
from portway.protocol import headers as h
from portway.protocol.location import rewrite_location

NO_BODY: Final = 0
LENGTH: Final = 1
CHUNKED: Final = 2
UNTIL_CLOSE: Final = 3

_SEP: Final = b": "
_CRLF: Final = b"\r\n"
_CLOSE: Final = b"Connection: close\r\n"
_KEEP_ALIVE: Final = b"Connection: keep-alive\r\n"
_TE_CHUNKED: Final = b"Transfer-Encoding: chunked\r\n"
# Response headers passed to the client as they are; the rest are framing or hop-by-hop.
_END_TO_END: Final = frozenset(
    {
        h.OTHER,
        h.HOST,
        h.LOCATION,
        h.EXPECT,
        h.X_FORWARDED_FOR,
        h.X_FORWARDED_PROTO,
        h.X_FORWARDED_HOST,
        h.X_FORWARDED_PORT,
        h.FORWARDED,
        h.ORIGINAL_URI,
        h.REAL_IP,
    }
)
_kind_cache_get = h.cache_lookup
_OTHER: Final = h.OTHER
_status_lines: dict[tuple[int, bytes], bytes] = {}


def status_line(status: int, reason: bytes) -> bytes:
    """``HTTP/1.1 200 OK\\r\\n``; cached because backends repeat the same few."""
    key = (status, reason)
    line = _status_lines.get(key)
    if line is None:
        line = b"HTTP/1.1 %d %s\r\n" % (status, reason)
        if len(_status_lines) < 512:
            _status_lines[key] = line
    return line


class ResponseHead:
    """One backend response head; reused for every response on an upstream connection."""

    __slots__ = (
        "_cl_count",
        "_location",
        "_te",
        "_te_count",
        "close",
        "content_length",
        "framing",
        "named",
        "pieces",
        "reason",
        "rechunk",
        "status",
        "upgrade",
    )

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.status = 0
        self.reason = b""
        self.pieces: list[bytes] = []
        self.named: set[bytes] | None = None
        self.content_length = b""
        self._cl_count = 0
        self._te = b""
        self._te_count = 0
        self._location = -1
        self.framing = NO_BODY
        self.rechunk = False
        self.close = False
        self.upgrade: bytes | None = None

    def add_header(self, name: bytes, value: bytes) -> None:
        kind = _kind_cache_get(name)  # inlined classify(): one call less per header
        if kind == _OTHER:  # most headers: skip the set test and the kind ladder
            self.pieces.extend((name, _SEP, value, _CRLF))
            return
        if kind is None:
            kind = h.classify(name)
        if kind in _END_TO_END:
            if kind == h.LOCATION:
                self._location = len(self.pieces) + 2
            self.pieces.extend((name, _SEP, value, _CRLF))
        elif kind == h.CONTENT_LENGTH:
            self.content_length = value
            self._cl_count += 1
        elif kind == h.TRANSFER_ENCODING:
            self._te = value
            self._te_count += 1
        elif kind == h.CONNECTION:
            self.named = h.connection_tokens(value, self.named)
        elif kind == h.UPGRADE:
            self.upgrade = value  # dropped, but a 101 is checked against it
        # HOP_BY_HOP: dropped.

    def complete(self, status: int, *, head_request: bool) -> None:
        """Decide the body framing of a final (non-1xx) response, or raise 502."""
        self.status = status
        if self._cl_count > 1 or (self._te_count and self._cl_count):
            raise RemoteProtocolError("ambiguous response framing", status=502)
        if self._te_count and (self._te_count > 1 or self._te.strip().lower() != b"chunked"):
            raise RemoteProtocolError("unsupported response Transfer-Encoding", status=502)
        if self._cl_count and not self.content_length.isdigit():
            # llhttp leaves the OWS after a value in it (RFC 9110 §5.5: not part of it)
            self.content_length = self.content_length.rstrip(b" \t")
        if self._cl_count and not (self.content_length.isdigit() and len(self.content_length) < 19):
            raise RemoteProtocolError("invalid response Content-Length", status=502)
        if head_request or status in (204, 304) or status < 200:
            self.framing = NO_BODY
        elif self._te_count:
            self.framing = CHUNKED
        elif self._cl_count:
            self.framing = LENGTH
        else:
            self.framing = UNTIL_CLOSE
        if self.named:
            self.pieces = h.drop_named(self.pieces, self.named)
            self._location = -1  # indices moved; Connection naming Location is absurd anyway

    def encode(
        self,
        client_http10: bool,
        close: bool,
        request_host: bytes = b"",
        client_scheme: bytes = b"http",
        extra: bytes = b"",
    ) -> bytes:
        """The head for the client; sets ``rechunk`` and ``close`` for the body stage.

        ``extra`` is complete header lines Portway adds (a persistence cookie, Upgrade).
        Positional on the hot path: a keyword call costs a dict-like binding per call."""
        framing = self.framing
        if framing == LENGTH or (framing == NO_BODY and self._cl_count and self.status != 204):
            length = b"Content-Length: " + self.content_length + _CRLF
        elif framing in (CHUNKED, UNTIL_CLOSE) and not client_http10:
            length = _TE_CHUNKED
            self.rechunk = True
        else:
            length = b""
            if framing in (CHUNKED, UNTIL_CLOSE):
                close = True  # HTTP/1.0 client: the close marks the body's end
        self.close = close
        if self._location >= 0 and client_scheme != b"http":
            i = self._location
            self.pieces[i] = rewrite_location(
                self.pieces[i], request_host=request_host, client_scheme=client_scheme
            )
        connection = _CLOSE if close else (_KEEP_ALIVE if client_http10 else b"")
        line = _status_lines.get((self.status, self.reason))  # status_line(), inlined
        if line is None:
            line = status_line(self.status, self.reason)
        return b"".join((line, b"".join(self.pieces), extra, length, connection, _CRLF))

    def header_values(self, name: bytes) -> list[bytes]:
        """Every value of end-to-end header ``name`` (lower case); searched on demand."""
        pieces = self.pieces
        return [pieces[i + 2] for i in range(0, len(pieces), 4) if pieces[i].lower() == name]

    def encode_interim(self, status: int) -> bytes:
        """A 1xx head (100 Continue, 103 Early Hints) for an HTTP/1.1 client."""
        return status_line(status, self.reason) + b"".join(self.pieces) + _CRLF
