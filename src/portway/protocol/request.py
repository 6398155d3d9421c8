"""The request side: what a client's head says, whether it is safe, how it is re-sent.

A :class:`RequestHead` is fed the parser's events (URL pieces, header pairs, then the
head's end) and refuses anything whose framing two HTTP implementations could read
differently (RFC 9112 §6, request smuggling). llhttp in strict mode already refuses
CL+TE, duplicate or malformed Content-Length, obs-fold, bare CR/LF, NUL and control
characters, bad header names and bad chunk sizes; it accepts, and this module refuses:
``Transfer-Encoding`` lists such as ``gzip, chunked``, Transfer-Encoding on HTTP/1.0,
underscore spellings of framing headers, HTTP versions other than 1.0 and 1.1, more
than one Host, and absolute-form targets with userinfo or a scheme other than http(s).
The checks that overlap with llhttp stay here too, so the rules hold whatever parser
feeds this class.

Valid requests a strict reading could refuse (issue 11 §4): llhttp keeps the whitespace
after a field value, which is not part of it (RFC 9110 §5.5), so every value this module
interprets is read without it (Content-Length is also re-sent without it); an
absolute-form target's authority replaces Host and the request goes on in origin-form
(RFC 9112 §3.2.2), so Portway and the backend always agree on the host; trailer fields
are the client connection's (they are dropped).

Limits (issue 7): the request line is ``method SP request-target SP HTTP-version``
without its CRLF, as nginx counts it (``max_request_line`` → 414); the head is the request
line with its CRLF, every field line as ``name ": " value CRLF`` and the blank line
(``max_header_bytes`` → 431). That is the head's size as sent by any ordinary client and as
re-sent upstream; whitespace the parser drops (around a value, between request-line
parts) is counted as the one SP it stands for. The client connection also caps the raw
bytes of a head that is still unfinished after a read at the same limit.

The re-encoded head keeps the method, the URI (never prefix-stripped) and
every end-to-end header in order; Portway adds Host, the forwarded headers and its own
framing header, so hop-by-hop and Connection-named headers never reach the backend.
"""

from __future__ import annotations

from typing import Final

from portway.errors import RemoteProtocolError
from portway.protocol import headers as h
from portway.router.table import normalize_request_host

NO_BODY: Final = 0
LENGTH: Final = 1
CHUNKED: Final = 2

_SEP: Final = b": "
_CRLF: Final = b"\r\n"
_TE_CHUNKED: Final = b"Transfer-Encoding: chunked\r\n"
# Bytes of a request line around its method and target: SP, SP and "HTTP/1.1" (llhttp
# accepts only one-digit versions, so every version is 8 bytes).
_LINE_EXTRA: Final = 10
# Bytes of a head around its method, target and field lines: the line's extra, its CRLF
# and the blank line's CRLF.
_HEAD_EXTRA: Final = _LINE_EXTRA + 4


def _bad(message: str, status: int = 400) -> RemoteProtocolError:
    return RemoteProtocolError(message, status=status)


class RequestHead:
    """One request's head, accumulated from parser events; ``complete`` validates it."""

    __slots__ = (
        "_cl_count",
        "_header_bytes",
        "_max_header_bytes",
        "_te",
        "_te_count",
        "content_length",
        "expect",
        "forwarded",
        "framing",
        "host",
        "host_count",
        "http10",
        "keep_alive",
        "method",
        "named",
        "pieces",
        "upgrade",
        "url",
        "xff",
        "xfhost",
        "xfport",
        "xfproto",
    )

    def __init__(self, max_header_bytes: int, method: bytes = b"") -> None:
        self._max_header_bytes = max_header_bytes
        self._header_bytes = len(method) + _HEAD_EXTRA  # the head but its target
        self.url = b""
        self.method = method
        self.host = b""
        self.host_count = 0
        self.content_length = b""
        self._cl_count = 0
        self._te = b""
        self._te_count = 0
        self.pieces: list[bytes] = []  # name, ": ", value, CRLF groups of end-to-end headers
        self.named: set[bytes] | None = None
        self.xff: bytes | None = None
        self.xfproto: bytes | None = None
        self.xfhost: bytes | None = None
        self.xfport: bytes | None = None
        self.forwarded: bytes | None = None
        self.upgrade: bytes | None = None
        self.expect = False
        self.http10 = False
        self.keep_alive = True
        self.framing = NO_BODY

    def add_url(self, part: bytes, max_request_line: int) -> None:
        # llhttp hands the URL over in as many pieces as it arrived in.
        self.url = url = self.url + part if self.url else part
        if len(self.method) + len(url) + _LINE_EXTRA > max_request_line:
            raise _bad("request line too long", 414)

    def add_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4  # name ": " value CRLF
        if self._header_bytes + len(self.url) > self._max_header_bytes:
            raise _bad("request header block too large", 431)
        kind = h.classify(name)
        if kind == h.OTHER:
            self.pieces.extend((name, _SEP, value, _CRLF))
        else:
            self._add_special(kind, name, value)

    def _add_special(self, kind: int, name: bytes, value: bytes) -> None:
        if kind == h.HOST:
            self.host = value
            self.host_count += 1
        elif kind == h.CONTENT_LENGTH:
            self.content_length = value
            self._cl_count += 1
        elif kind == h.TRANSFER_ENCODING:
            self._te = value
            self._te_count += 1
        elif kind == h.CONNECTION:
            self.named = h.connection_tokens(value, self.named)
        elif kind == h.SMUGGLING:
            raise _bad(f"refusing header {name!r}: looks like a framing header")
        elif kind == h.X_FORWARDED_FOR:
            self.xff = self.xff + b", " + value if self.xff else value
        elif kind == h.FORWARDED:
            self.forwarded = self.forwarded + b", " + value if self.forwarded else value
        elif kind == h.X_FORWARDED_PROTO:
            self.xfproto = self.xfproto or value
        elif kind == h.X_FORWARDED_HOST:
            self.xfhost = self.xfhost or value
        elif kind == h.X_FORWARDED_PORT:
            self.xfport = self.xfport or value
        elif kind == h.UPGRADE:
            self.upgrade = value
        elif kind == h.EXPECT:
            self.expect = True
            self.pieces.extend((name, _SEP, value, _CRLF))
        elif kind == h.LOCATION:
            self.pieces.extend((name, _SEP, value, _CRLF))
        # HOP_BY_HOP, SPOOFING, REAL_IP and ORIGINAL_URI (see headers.py): dropped.

    def complete(self, method: bytes, version: str, keep_alive: bool) -> None:
        """Validate the finished head and decide the body framing (RFC 9112 §6.3)."""
        self.method = method
        if version == "1.1":
            self.http10 = False
        elif version == "1.0":
            self.http10 = True
        else:
            raise _bad(f"unsupported HTTP version {version}")
        self.keep_alive = keep_alive
        if self.host_count != 1:
            raise _bad("exactly one Host header is required")
        if self.url[:1] != b"/":
            self._take_target_authority()
        self.framing = self._decide_framing()
        if self.http10 and self.expect:
            self._drop_expect()  # RFC 9110 §10.1.1: 100-continue from HTTP/1.0 is ignored
        if self.named:
            self.pieces = h.drop_named(self.pieces, self.named)

    def _decide_framing(self) -> int:
        if self._te_count:
            if self._cl_count:
                raise _bad("both Content-Length and Transfer-Encoding")
            if self.http10:
                raise _bad("Transfer-Encoding in an HTTP/1.0 request")
            if self._te_count > 1 or self._te.strip().lower() != b"chunked":
                raise _bad("Transfer-Encoding must be exactly 'chunked'")
            return CHUNKED
        if self._cl_count:
            if self._cl_count > 1:
                raise _bad("more than one Content-Length")
            # llhttp leaves the OWS after a value in it (the other framing values are
            # read with it stripped already; Host's is dropped where it is normalised).
            cl = self.content_length = self.content_length.rstrip(b" \t")
            if not cl.isdigit() or len(cl) > 18:
                raise _bad("invalid Content-Length")
            return LENGTH
        return NO_BODY

    def _take_target_authority(self) -> None:
        """An absolute-form target (RFC 9112 §3.2.2): its authority replaces Host, and the
        request is forwarded in origin-form, so the backend cannot pick another host than
        the one Portway routed by."""
        url = self.url
        sep = url.find(b"://")
        if sep < 0:
            return  # "*" (OPTIONS): no authority
        if url[:sep].lower() not in (b"http", b"https"):
            raise _bad("the request target's scheme must be http or https")
        start = sep + 3
        end = len(url)
        for ch in (b"/", b"?", b"#"):
            pos = url.find(ch, start)
            if 0 <= pos < end:
                end = pos
        authority = url[start:end]
        if b"@" in authority:  # RFC 9110 §4.2.4
            raise _bad("userinfo in the request target")
        if normalize_request_host(authority.decode("latin-1")) is None:
            raise _bad("the request target has no valid host")
        rest = url[end:]
        hash_at = rest.find(b"#")  # a fragment is never sent (RFC 9110 §7.1)
        if hash_at >= 0:
            rest = rest[:hash_at]
        if not rest.startswith(b"/"):
            # RFC 9112 §3.2.4: an empty path is "*" for OPTIONS, "/" otherwise.
            rest = (b"*" if self.method == b"OPTIONS" and not rest else b"/") + rest
        self.host = authority
        self.url = rest

    def _drop_expect(self) -> None:
        pieces = self.pieces
        self.pieces = h.drop_named(pieces, {b"expect"})
        self.expect = False

    @property
    def path(self) -> str:
        """The URL path without query or fragment, for routing."""
        url = self.url
        if b"?" not in url and b"#" not in url and url[:1] == b"/":
            return url.decode("latin-1")  # origin-form without query: the usual request
        end = len(url)
        for sep in (b"?", b"#"):
            pos = url.find(sep)
            if 0 <= pos < end:
                end = pos
        path = url[:end]
        if not path.startswith(b"/"):  # "*": absolute forms were made origin-form
            path = b"/"
        return path.decode("latin-1")

    def header(self, name: bytes) -> bytes | None:
        """The value of end-to-end header ``name`` (lower case), searched only on demand:
        session persistence, hash keys and WebSocket handshakes are the only callers."""
        pieces = self.pieces
        for i in range(0, len(pieces), 4):
            if pieces[i].lower() == name:
                return pieces[i + 2].rstrip(b" \t")
        return None

    def encode(self, forwarded_lines: bytes, target: bytes) -> bytes:
        """The head to send upstream, always as HTTP/1.1 with keep-alive; ``target`` is
        the request target (``url``, or the proxy's rewrite of it)."""
        if self.framing == LENGTH:
            framing = b"Content-Length: " + self.content_length + _CRLF
        elif self.framing == CHUNKED:
            framing = _TE_CHUNKED
        else:
            framing = b""
        return b"".join(
            (
                self.method,
                b" ",
                target,
                b" HTTP/1.1\r\nHost: ",
                self.host,
                _CRLF,
                b"".join(self.pieces),
                forwarded_lines,
                framing,
                _CRLF,
            )
        )
