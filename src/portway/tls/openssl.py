"""The few OpenSSL calls Python's ``ssl`` does not offer, through ctypes. All of them.

Why ctypes at all: Python 3.11 can set one ECDH curve only (we want a list: groups.py)
and has no API for session-ticket keys (every process would keep OpenSSL's own random
keys, so a session could resume only on the process that made it).

Why it is safe enough:

- the ``SSL_CTX *`` sits right after ``PyObject_HEAD`` in CPython's ``PySSLContext``.
  That is not an API, so :func:`ssl_ctx_pointer` checks every pointer it reads: the
  library ctypes loaded must be the very OpenSSL ``_ssl`` runs on, and two getters on
  the pointer must answer what Python's ``ssl`` reports for the same context. Anything
  else gives None and the caller falls back (and says so).
- the ticket callback is the deprecated ``SSL_CTX_set_tlsext_ticket_key_cb`` (a macro
  over ``SSL_CTX_callback_ctrl``, still exported by OpenSSL 3): its EVP_MAC twin needs
  ``OSSL_PARAM`` arrays, which are far more ctypes for the same result.
- OpenSSL calls the callback inside a handshake that ``_ssl`` runs with the GIL released;
  a ctypes callback takes the GIL itself (PyGILState_Ensure), so it may run Python. It
  must never raise into C: any failure answers 0, "no ticket" (a full handshake next
  time, or now when decrypting), never -1 (which aborts the handshake) and never a crash.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import ssl
import sys
import time
from collections.abc import Callable
from typing import Any

from portway.tls.tickets import NAME_BYTES, NO_KEYS, TicketKeys

log = logging.getLogger("portway.tls")

_HEADER = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD
_SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB = 72  # openssl/ssl.h, unchanged since 0.9.8
# Python's CERT_* → OpenSSL's SSL_VERIFY_PEER (1) | SSL_VERIFY_FAIL_IF_NO_PEER_CERT (2)
_VERIFY_MODES = {ssl.CERT_NONE: 0, ssl.CERT_OPTIONAL: 1, ssl.CERT_REQUIRED: 3}
_IV_BYTES = 16  # AES-256-CBC's IV; OpenSSL's buffer is EVP_MAX_IV_LENGTH (16)

# int cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *ctx,
#        HMAC_CTX *hctx, int enc)
_TicketCallback = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_int,
)


class _Libs:
    """libssl and libcrypto with the prototypes we call; None where they cannot be had."""

    def __init__(self) -> None:
        ssl_name, crypto_name = ctypes.util.find_library("ssl"), ctypes.util.find_library("crypto")
        if sys.implementation.name != "cpython" or not ssl_name or not crypto_name:
            raise OSError("no CPython, libssl or libcrypto")
        libssl, libcrypto = ctypes.CDLL(ssl_name), ctypes.CDLL(crypto_name)
        self.version_num = _fn(libcrypto.OpenSSL_version_num, ctypes.c_ulong)
        self.get_options = _fn(libssl.SSL_CTX_get_options, ctypes.c_uint64, ctypes.c_void_p)
        self.get_verify_mode = _fn(libssl.SSL_CTX_get_verify_mode, ctypes.c_int, ctypes.c_void_p)
        self.ctrl = _fn(
            libssl.SSL_CTX_ctrl,
            ctypes.c_long,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_long,
            ctypes.c_char_p,
        )
        self.callback_ctrl = _fn(
            libssl.SSL_CTX_callback_ctrl,
            ctypes.c_long,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_void_p,
        )
        self.aes_256_cbc = _fn(libcrypto.EVP_aes_256_cbc, ctypes.c_void_p)
        self.sha256 = _fn(libcrypto.EVP_sha256, ctypes.c_void_p)
        # (EVP_CIPHER_CTX *, const EVP_CIPHER *, ENGINE *, key, iv)
        cipher_init: list[Any] = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        cipher_init += [ctypes.c_char_p, ctypes.c_void_p]
        self.encrypt_init = _fn(libcrypto.EVP_EncryptInit_ex, ctypes.c_int, *cipher_init)
        self.decrypt_init = _fn(libcrypto.EVP_DecryptInit_ex, ctypes.c_int, *cipher_init)
        self.hmac_init = _fn(
            libcrypto.HMAC_Init_ex,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_void_p,
        )


def _fn(func: Any, restype: Any, *argtypes: Any) -> Any:
    func.restype = restype
    func.argtypes = list(argtypes)
    return func


def _load() -> _Libs | None:
    try:
        libs = _Libs()
    except (OSError, AttributeError) as exc:
        log.warning("OpenSSL through ctypes unavailable: %s", exc)
        return None
    if libs.version_num() != ssl.OPENSSL_VERSION_NUMBER:
        # Another libssl than the one _ssl is linked with: its SSL_CTX is not ours.
        log.warning("libssl found by ctypes is not the one Python's ssl uses")
        return None
    return libs


_LIBS = _load()


def ssl_ctx_pointer(ctx: ssl.SSLContext) -> int | None:
    """The ``SSL_CTX *`` behind ``ctx``, or None if it cannot be found and checked."""
    if _LIBS is None or not isinstance(ctx, ssl.SSLContext):
        return None
    pointer = ctypes.c_void_p.from_address(id(ctx) + _HEADER).value
    if not pointer:
        return None
    # The layout check: what OpenSSL says of this pointer is what Python says of ctx.
    if _LIBS.get_options(pointer) != int(ctx.options):
        return None
    if _LIBS.get_verify_mode(pointer) & 3 != _VERIFY_MODES[ctx.verify_mode]:
        return None
    return pointer


def set_groups_list(ctx: ssl.SSLContext, groups: bytes) -> bool | None:
    """``SSL_CTX_set1_groups_list``; None when the context cannot be reached."""
    pointer = ssl_ctx_pointer(ctx)
    if pointer is None or _LIBS is None:
        return None
    return bool(_LIBS.ctrl(pointer, 92, 0, groups) == 1)  # 92: SSL_CTRL_SET_GROUPS_LIST


class TicketKeyInstaller:
    """One serving process's ticket keys and the OpenSSL callback that uses them.

    ``keys`` may be replaced at any time (on the event loop); the callback reads the
    attribute once per call, so a handshake sees one whole set."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.keys: TicketKeys = NO_KEYS
        self._clock = clock
        self._failed: set[str] = set()
        # Kept referenced for as long as any context may call it (this object's life).
        self._callback = _TicketCallback(self._on_ticket)

    @staticmethod
    def available(ctx: ssl.SSLContext) -> bool:
        """Whether keys can be installed in ``ctx`` (the start-up check)."""
        return ssl_ctx_pointer(ctx) is not None

    def install(self, ctx: ssl.SSLContext) -> bool:
        """Make ``ctx`` seal and open tickets with ``self.keys``; False (and ``ctx``
        keeps OpenSSL's per-process keys) if its ``SSL_CTX`` cannot be reached."""
        pointer = ssl_ctx_pointer(ctx)
        if pointer is None or _LIBS is None:
            return False
        address = ctypes.cast(self._callback, ctypes.c_void_p).value
        return bool(_LIBS.callback_ctrl(pointer, _SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB, address))

    def _on_ticket(
        self, _ssl: int, name: int, iv: int, cipher: int, hmac: int, encrypt: int
    ) -> int:
        # Catches everything, even KeyboardInterrupt: an exception here cannot reach any
        # Python frame, and OpenSSL would read whatever int ctypes left behind.
        try:
            if encrypt:
                return self._seal(name, iv, cipher, hmac)
            return self._open(name, iv, cipher, hmac)
        except BaseException as exc:
            self._note_failure(type(exc).__name__)
            return 0

    def _seal(self, name: int, iv: int, cipher: int, hmac: int) -> int:
        assert _LIBS is not None
        key = self.keys.encrypting(self._clock())
        if key is None:
            return 0  # no shared key yet or any more: this handshake gets no ticket
        ctypes.memmove(name, key.name, NAME_BYTES)
        ctypes.memmove(iv, os.urandom(_IV_BYTES), _IV_BYTES)
        if _LIBS.encrypt_init(cipher, _LIBS.aes_256_cbc(), None, key.aes_key, iv) != 1:
            return self._note_failure("EVP_EncryptInit_ex")
        if _LIBS.hmac_init(hmac, key.hmac_key, len(key.hmac_key), _LIBS.sha256(), None) != 1:
            return self._note_failure("HMAC_Init_ex")
        return 1

    def _open(self, name: int, iv: int, cipher: int, hmac: int) -> int:
        assert _LIBS is not None
        now = self._clock()
        key = self.keys.decrypting(ctypes.string_at(name, NAME_BYTES), now)
        if key is None:
            return 0  # unknown or expired key: a full handshake
        if _LIBS.hmac_init(hmac, key.hmac_key, len(key.hmac_key), _LIBS.sha256(), None) != 1:
            return self._note_failure("HMAC_Init_ex")
        if _LIBS.decrypt_init(cipher, _LIBS.aes_256_cbc(), None, key.aes_key, iv) != 1:
            return self._note_failure("EVP_DecryptInit_ex")
        # 2: resume, and give the client a ticket under the current key.
        return 1 if self.keys.encrypting(now) is key else 2

    def _note_failure(self, what: str) -> int:
        if what not in self._failed:  # once per kind: a handshake storm must not flood logs
            self._failed.add(what)
            log.error("session ticket callback failed (%s): no ticket for this handshake", what)
        return 0
