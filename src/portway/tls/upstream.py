"""TLS to backends (``Backend.tls``): the one client context of a node, and the rule for
what is sent and checked.

The rule (docs/dataplane.md, docs/security.md "Upstream TLS"):

- Without ``--upstream-ca-file`` the connection is encrypted but the backend is not
  authenticated, as nginx's ``proxy_ssl_verify off`` (its default) and HAProxy's
  ``verify none``: a tool's self-signed certificate works, and so would an impostor's on
  the path between the node and the backend.
- With ``--upstream-ca-file`` every TLS backend must present a chain to one of that
  file's CAs naming the backend's address as configured: a hostname against its DNS
  names, an IP address against its IP addresses (as a browser does). Anything else is a
  failed handshake, answered like a refused connection.
- SNI is the backend's address when it is a hostname; an IP address is never sent as
  SNI (RFC 6066 §3 forbids it).
- TLS 1.2 or newer, ALPN ``http/1.1`` (the data plane speaks HTTP/1.1 upstream).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from portway.errors import ConfigError


def upstream_context(ca_file: Path | None, *, flag: str = "--upstream-ca-file") -> ssl.SSLContext:
    """The client context for every TLS backend of a node; ConfigError names ``flag``
    when ``ca_file`` cannot be read as a PEM CA bundle."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    if ca_file is None:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    try:
        context.load_verify_locations(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:  # FileNotFoundError, or no PEM certificate in it
        raise ConfigError(f"{flag}: cannot read CA bundle {ca_file}: {exc}") from None
    return context  # CERT_REQUIRED and check_hostname: the defaults of a client context
