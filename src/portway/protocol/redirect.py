"""The answers a TLS-aware proxy gives on its own: the HTTP → HTTPS redirect and HSTS.

Pure bytes in, bytes out. The redirect keeps the request-target as the client sent it
(path and query), drops the plain listener's port from the host and adds the HTTPS
listener's port unless it is 443.
"""

from __future__ import annotations

from typing import Final

HSTS_NAME: Final = b"Strict-Transport-Security"
HSTS_LINE: Final = HSTS_NAME + b": max-age=31536000\r\n"
_HSTS_LOWER: Final = HSTS_NAME.lower()


def request_path(target: bytes) -> bytes:
    """The origin-form part of a request-target: ``/p?q`` as is, ``http://h/p?q`` →
    ``/p?q``, anything else (``*``, an empty absolute path) → ``/``."""
    if target[:1] == b"/":
        return target
    scheme_end = target.find(b"://")
    if scheme_end > 0:
        slash = target.find(b"/", scheme_end + 3)
        query = target.find(b"?", scheme_end + 3)
        if slash >= 0 and (query < 0 or slash < query):
            return target[slash:]
        if query >= 0:
            return b"/" + target[query:]
    return b"/"


def https_location(host: str, target: bytes, https_port: int) -> bytes:
    """``https://host[:port]/path?query`` for a plain-HTTP request to ``host``
    (already normalised: lower-case, no port)."""
    authority = host.encode("idna") if not host.isascii() else host.encode("ascii")
    if https_port and https_port != 443:
        authority += b":%d" % https_port
    return b"https://" + authority + request_path(target)


def redirect_response(location: bytes, *, close: bool) -> bytes:
    """A complete ``301 Moved Permanently`` with an empty body."""
    return b"".join(
        (
            b"HTTP/1.1 301 Moved Permanently\r\nLocation: ",
            location,
            b"\r\nContent-Length: 0\r\nCache-Control: no-store\r\n",
            b"Connection: close\r\n\r\n" if close else b"\r\n",
        )
    )


def has_hsts(pieces: list[bytes]) -> bool:
    """Whether a response head's ``[name, ": ", value, CRLF, ...]`` pieces already carry
    Strict-Transport-Security (the backend's own policy wins)."""
    return any(pieces[i].lower() == _HSTS_LOWER for i in range(0, len(pieces), 4))
