"""A proxy's purge key (``X-Purge-Key``, docs/caching.md) is kept only as a salted hash.

The form is ``sha256$<salt>$<digest>`` (hex; a fresh 16-byte salt per key, digest =
SHA-256(salt || key)). A fast hash, on purpose: the data plane checks a key on the
worker's event loop for every ``PURGE`` that carries one, right or wrong, so a slow KDF
(scrypt at a safe cost is ~50 ms and 16 MiB) would let anyone who can reach the port
stall every connection of a worker with wrong keys. What a slow KDF buys, resistance
to guessing a weak secret from a leaked hash, is bought here by the key itself: the API
takes only keys of ``MIN_LENGTH`` visible ASCII characters with some variety (a random
32-hex-digit key has 128 bits; ``openssl rand -hex 16``), too many to guess at any
hash rate. The salt keeps equal keys of two proxies from showing as equal hashes.

Keys stored in clear before migration 0016 were hashed as they were (16 characters and
up), so they keep working; only new keys are held to today's length.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import string

from portway.errors import ValidationError

SCHEME = "sha256"
MIN_LENGTH = 32  # visible ASCII characters; see the module docstring
MAX_LENGTH = 256
MIN_DISTINCT = 8  # "aaaa..." and "abab..." are not secrets, however long
SALT_BYTES = 16
_HEX = frozenset(string.hexdigits.lower())


def checked_key(key: object, field: str = "purge.key") -> str:
    """``key`` when it may be a purge key (the API's rule for new keys), else a
    ValidationError naming ``field``; the key itself never goes into the message."""
    ok = (
        isinstance(key, str)
        and MIN_LENGTH <= len(key) <= MAX_LENGTH
        and all(33 <= ord(c) < 127 for c in key)
        and len(set(key)) >= MIN_DISTINCT
    )
    if not ok:
        raise ValidationError(
            f"{field} must be {MIN_LENGTH} to {MAX_LENGTH} visible ASCII characters, at least"
            f" {MIN_DISTINCT} of them different (a random key: openssl rand -hex 16)",
            field=field,
        )
    assert isinstance(key, str)
    return key


def hash_key(key: str, salt: bytes | None = None) -> str:
    """The stored form of ``key`` (a fresh random salt unless one is given)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.sha256(salt + key.encode("ascii")).hexdigest()
    return f"{SCHEME}${salt.hex()}${digest}"


def parsed(stored: str) -> tuple[bytes, bytes]:
    """(salt, digest) of a stored hash; ValueError when ``stored`` is not one."""
    scheme, salt, digest = stored.split("$")
    if scheme != SCHEME or len(salt) != 2 * SALT_BYTES or len(digest) != 64:
        raise ValueError("not a purge key hash")
    if not _HEX.issuperset(salt) or not _HEX.issuperset(digest):
        raise ValueError("not a purge key hash")
    return bytes.fromhex(salt), bytes.fromhex(digest)


def is_key_hash(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parsed(value)
    except ValueError:
        return False
    return True


def matches(salt: bytes, digest: bytes, given: bytes) -> bool:
    """Whether ``given`` (the header's bytes) is the key: one SHA-256 over a few dozen
    bytes (about a microsecond) and a constant-time comparison of the digests."""
    return hmac.compare_digest(hashlib.sha256(salt + given).digest(), digest)
