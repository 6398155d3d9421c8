"""Restrict a server context's key-exchange groups to Mozilla's intermediate list.

Python 3.11's ``ssl`` can set only one ECDH curve, and OpenSSL's default list also offers
X448 and secp521r1, which Mozilla's profile leaves out. OpenSSL can take a list
(``SSL_CTX_set1_groups_list``), which we call through ctypes (``tls/openssl.py``, where
the context's ``SSL_CTX`` is found and checked). If that cannot be done, the context is
left as it was and a warning is logged, so TLS keeps working with OpenSSL's defaults.
"""

from __future__ import annotations

import logging
import ssl

from portway.tls.openssl import set_groups_list

log = logging.getLogger("portway.tls")

MOZILLA_INTERMEDIATE_GROUPS = b"X25519:prime256v1:secp384r1"


def restrict_groups(ctx: ssl.SSLContext, groups: bytes = MOZILLA_INTERMEDIATE_GROUPS) -> bool:
    """Set the groups a server context offers; True when OpenSSL accepted the list."""
    ok = set_groups_list(ctx, groups)
    if ok is None:
        log.warning("cannot restrict TLS groups: OpenSSL unreachable; using OpenSSL defaults")
        return False
    if not ok:
        log.warning("OpenSSL %s refused TLS groups %s", ssl.OPENSSL_VERSION, groups.decode())
    return ok
