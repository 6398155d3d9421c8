"""Restrict a server context's key-exchange groups to Mozilla's intermediate list.

Python 3.11's ``ssl`` can set only one ECDH curve, and OpenSSL's default list also offers
X448 and secp521r1, which Mozilla's profile leaves out. OpenSSL can take a list
(``SSL_CTX_set1_groups_list``, a macro over ``SSL_CTX_ctrl``), so we call it through
ctypes on the context's ``SSL_CTX``. The pointer sits right after the object header in
CPython's ``PySSLContext``; if anything does not look as expected, the context is left
as it was and a warning is logged, so TLS keeps working with OpenSSL's defaults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import ssl
import sys

log = logging.getLogger("portway.tls")

MOZILLA_INTERMEDIATE_GROUPS = b"X25519:prime256v1:secp384r1"
_SSL_CTRL_SET_GROUPS_LIST = 92  # from openssl/ssl.h, stable since OpenSSL 1.1.1
_HEADER = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD


def _ssl_ctx_ctrl() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("ssl")
    if name is None or sys.implementation.name != "cpython":
        return None
    try:
        func = ctypes.CDLL(name).SSL_CTX_ctrl
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
    func.restype = ctypes.c_long
    return func


_CTRL = _ssl_ctx_ctrl()


def restrict_groups(ctx: ssl.SSLContext, groups: bytes = MOZILLA_INTERMEDIATE_GROUPS) -> bool:
    """Set the groups a server context offers; True when OpenSSL accepted the list."""
    if _CTRL is None:
        log.warning("cannot restrict TLS groups: libssl not found; using OpenSSL defaults")
        return False
    ssl_ctx = ctypes.c_void_p.from_address(id(ctx) + _HEADER).value
    if not ssl_ctx:
        return False
    ok = bool(_CTRL(ssl_ctx, _SSL_CTRL_SET_GROUPS_LIST, 0, groups) == 1)
    if not ok:
        log.warning("OpenSSL %s refused TLS groups %s", ssl.OPENSSL_VERSION, groups.decode())
    return ok
