"""Sans-IO protocol logic: HTTP/1.1 framing rules, header hygiene, handshakes. No sockets here.

Modules: ``headers`` (classification), ``request`` and ``response`` (heads, framing
decisions, re-encoding), ``forwarded`` (X-Forwarded-*, RFC 7239), ``chunked`` (sending
side of the chunked coding), ``location`` (Location rewrite for TLS), ``pages`` (the
pre-encoded error responses).
"""

from portway.protocol.forwarded import ForwardedContext, is_trusted, parse_networks
from portway.protocol.location import rewrite_location
from portway.protocol.pages import error_response
from portway.protocol.request import RequestHead
from portway.protocol.response import ResponseHead

__all__ = [
    "ForwardedContext",
    "RequestHead",
    "ResponseHead",
    "error_response",
    "is_trusted",
    "parse_networks",
    "rewrite_location",
]
