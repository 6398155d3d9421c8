"""Rewriting ``Location`` headers that point at the backend's scheme.

Backends behind a TLS-terminating proxy see plain HTTP and redirect to ``http://host/``.
When the client came in over HTTPS, that redirect must say ``https://`` or the browser
leaves TLS. On plain HTTP the function is an identity, which is what the data plane needs
today; the TLS listener only has to pass ``client_scheme=b"https"``.
"""

from __future__ import annotations

_DEFAULT_PORTS = {b"http": b"80", b"https": b"443"}


def _authority_host(authority: bytes, scheme: bytes) -> bytes:
    """Lower-cased authority with the scheme's default port and a trailing dot removed."""
    host = authority.lower()
    port = _DEFAULT_PORTS.get(scheme)
    if port is not None and host.endswith(b":" + port):
        host = host[: -len(port) - 1]
    if host.endswith(b"."):
        host = host[:-1]
    return host


def rewrite_location(
    location: bytes,
    *,
    request_host: bytes,
    client_scheme: bytes,
    backend_scheme: bytes = b"http",
) -> bytes:
    """``location`` with the backend's scheme replaced by the client's, when it points
    at the host the client asked for; any other value is returned unchanged."""
    if client_scheme == backend_scheme:
        return location
    prefix = backend_scheme + b"://"
    if location[: len(prefix)].lower() != prefix:
        return location
    rest = location[len(prefix) :]
    end = len(rest)
    for sep in (b"/", b"?", b"#"):
        pos = rest.find(sep)
        if 0 <= pos < end:
            end = pos
    authority, tail = rest[:end], rest[end:]
    wanted = _authority_host(request_host, client_scheme)
    if _authority_host(authority, backend_scheme) != wanted:
        return location
    return client_scheme + b"://" + wanted + tail
