"""Encryption at rest of the secrets the store must keep (tenants' private keys).

AES-256-GCM, with a fresh random 96-bit nonce per value. The caller names what a value
is for (the *context*, e.g. ``certificate:<id>``); it is the AEAD's associated data, so a
ciphertext copied into another row does not open there. Every sealed value carries the
id (kid) of the key that sealed it, so a keyring can hold several keys during a
rotation: the first key seals, every key opens what it sealed.

Pure: no files and no database here (keyfile.py reads keys from disk).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from portway.errors import StoreError

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's native nonce size; random nonces are safe far past our volumes
_KID_LABEL = b"portway secret key id\x00"


@dataclass(frozen=True, slots=True)
class SecretKey:
    """One 256-bit key. Its kid is derived from it, so a key file needs no ids."""

    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.material) != KEY_BYTES:
            raise ValueError(f"a secret key is {KEY_BYTES} bytes, not {len(self.material)}")

    @property
    def kid(self) -> str:
        # A hash of a 256-bit random key reveals nothing usable about it.
        return hashlib.sha256(_KID_LABEL + self.material).hexdigest()[:16]

    @classmethod
    def generate(cls) -> SecretKey:
        return cls(os.urandom(KEY_BYTES))


@dataclass(frozen=True, slots=True)
class Sealed:
    """A sealed value as stored: the kid, and base64 of nonce + ciphertext + tag."""

    kid: str
    text: str


class SecretBox(Protocol):
    """What the store needs to keep a secret: seal with the current key, open with any."""

    def seal(self, plaintext: str, context: str) -> Sealed: ...

    def open(self, sealed: Sealed, context: str) -> str: ...

    def kids(self) -> tuple[str, ...]:
        """The known key ids, the sealing (current) one first."""
        ...


class Keyring:
    """A fixed list of keys: ``keys[0]`` seals, all of them open."""

    def __init__(self, keys: Sequence[SecretKey]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self._keys = {key.kid: key for key in keys}
        if len(self._keys) != len(keys):
            raise ValueError("the same key is listed twice")
        self._current = keys[0]

    @classmethod
    def generate(cls) -> Keyring:
        """A keyring of one new random key (tests, and stores that never restart)."""
        return cls([SecretKey.generate()])

    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def seal(self, plaintext: str, context: str) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        aead = AESGCM(self._current.material)
        blob = nonce + aead.encrypt(nonce, plaintext.encode(), context.encode())
        return Sealed(kid=self._current.kid, text=base64.b64encode(blob).decode("ascii"))

    def open(self, sealed: Sealed, context: str) -> str:
        key = self._keys.get(sealed.kid)
        if key is None:
            raise StoreError(f"sealed with key {sealed.kid}, which is not in the keyring")
        try:
            blob = base64.b64decode(sealed.text, validate=True)
            nonce, body = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
            return AESGCM(key.material).decrypt(nonce, body, context.encode()).decode()
        except (InvalidTag, binascii.Error, ValueError):
            # Wrong key material, altered bytes, or a value moved from another row.
            raise StoreError(
                f"{context}: the sealed value does not open (altered, or moved from another row)"
            ) from None


class NoSecrets:
    """The box of a store opened without a key: it refuses to seal or open anything."""

    def kids(self) -> tuple[str, ...]:
        return ()

    def seal(self, plaintext: str, context: str) -> Sealed:
        raise StoreError("this store was opened without a secret key: it cannot store keys")

    def open(self, sealed: Sealed, context: str) -> str:
        raise StoreError("this store was opened without a secret key: it cannot read keys")


NO_SECRETS = NoSecrets()
