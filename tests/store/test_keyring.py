"""AES-256-GCM sealing: values open only with their key and only in their own row."""

from __future__ import annotations

import base64
import dataclasses

import pytest

from portway.errors import StoreError
from portway.store.keyring import NO_SECRETS, Keyring, Sealed, SecretKey

PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
    "-----END PRIVATE KEY-----\n"
)


def test_sealed_value_opens_to_the_plaintext_and_does_not_contain_it() -> None:
    ring = Keyring.generate()
    sealed = ring.seal(PEM, "certificate:a")
    assert sealed.kid == ring.kids()[0]
    assert "PRIVATE KEY" not in sealed.text and "MIGHAgEA" not in sealed.text
    assert ring.open(sealed, "certificate:a") == PEM


def test_each_seal_uses_a_fresh_nonce() -> None:
    ring = Keyring.generate()
    assert ring.seal(PEM, "certificate:a").text != ring.seal(PEM, "certificate:a").text


def test_value_moved_to_another_row_does_not_open() -> None:
    ring = Keyring.generate()
    sealed = ring.seal(PEM, "certificate:a")
    with pytest.raises(StoreError, match="moved from another row"):
        ring.open(sealed, "certificate:b")


def test_altered_value_does_not_open() -> None:
    ring = Keyring.generate()
    sealed = ring.seal(PEM, "certificate:a")
    blob = bytearray(base64.b64decode(sealed.text))
    blob[-1] ^= 1
    altered = dataclasses.replace(sealed, text=base64.b64encode(bytes(blob)).decode())
    with pytest.raises(StoreError, match="does not open"):
        ring.open(altered, "certificate:a")
    with pytest.raises(StoreError, match="does not open"):
        ring.open(dataclasses.replace(sealed, text="not base64!"), "certificate:a")


def test_value_sealed_with_another_key_does_not_open() -> None:
    sealed = Keyring.generate().seal(PEM, "certificate:a")
    with pytest.raises(StoreError, match="not in the keyring"):
        Keyring.generate().open(sealed, "certificate:a")
    # Even when told the kid is its own, another key's material does not open it.
    other = Keyring.generate()
    with pytest.raises(StoreError, match="does not open"):
        other.open(Sealed(kid=other.kids()[0], text=sealed.text), "certificate:a")


def test_first_key_seals_and_every_key_opens() -> None:
    old, new = SecretKey.generate(), SecretKey.generate()
    sealed_old = Keyring([old]).seal(PEM, "certificate:a")
    ring = Keyring([new, old])
    assert ring.kids() == (new.kid, old.kid)
    assert ring.open(sealed_old, "certificate:a") == PEM
    assert ring.seal(PEM, "certificate:a").kid == new.kid


def test_kid_is_stable_and_the_key_never_shows_in_repr() -> None:
    key = SecretKey(bytes(range(32)))
    assert key.kid == SecretKey(bytes(range(32))).kid != SecretKey(bytes(32)).kid
    assert len(key.kid) == 16 and bytes(range(32)).hex() not in repr(key)
    with pytest.raises(ValueError):
        SecretKey(b"short")
    with pytest.raises(ValueError):
        Keyring([key, SecretKey(bytes(range(32)))])


def test_a_store_without_secrets_refuses_to_seal_or_open() -> None:
    with pytest.raises(StoreError, match="without a secret key"):
        NO_SECRETS.seal(PEM, "certificate:a")
    with pytest.raises(StoreError, match="without a secret key"):
        NO_SECRETS.open(Sealed(kid="x", text=""), "certificate:a")
