"""Validation of tenant-uploaded certificates (pure: PEM text in, facts or errors out)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from portway.errors import ValidationError


@dataclass(frozen=True, kw_only=True, slots=True)
class CertificateInfo:
    names: tuple[str, ...]  # DNS names the leaf covers, lower-case
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint: str  # SHA-256 of the leaf, hex


def inspect_certificate(
    chain_pem: str,
    key_pem: str,
    *,
    passphrase: str | None = None,
    now: dt.datetime | None = None,
) -> CertificateInfo:
    """Check that ``chain_pem`` parses, that ``key_pem`` matches its leaf and that it is
    valid now; ValidationError names the field at fault."""
    try:
        chain = x509.load_pem_x509_certificates(chain_pem.encode())
    except ValueError:
        raise ValidationError("chain is not a PEM certificate chain", field="chain") from None
    leaf = chain[0]
    try:
        key = serialization.load_pem_private_key(
            key_pem.encode(), password=passphrase.encode() if passphrase else None
        )
    except (ValueError, TypeError) as exc:
        raise ValidationError(f"key cannot be read: {exc}", field="key") from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise ValidationError("key must be RSA, ECDSA or Ed25519", field="key")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, public) != leaf.public_key().public_bytes(der, public):
        raise ValidationError("key does not match the certificate", field="key")
    moment = now or dt.datetime.now(dt.UTC)
    if leaf.not_valid_after_utc <= moment:
        raise ValidationError("certificate has expired", field="chain")
    if leaf.not_valid_before_utc > moment:
        raise ValidationError("certificate is not valid yet", field="chain")
    return CertificateInfo(
        names=certificate_names(leaf),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        fingerprint=leaf.fingerprint(hashes.SHA256()).hex(),
    )


def certificate_names(cert: x509.Certificate) -> tuple[str, ...]:
    """DNS names from subjectAltName, else the common name (legacy certificates)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = san.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return tuple(sorted({n.lower().rstrip(".") for n in names}))


def covers(names: tuple[str, ...], hostname: str) -> bool:
    """RFC 6125 matching: exact, or a ``*.`` name covering exactly one more label."""
    host = hostname.lower().rstrip(".")
    if host in names:
        return True
    if host.startswith("*."):
        return False
    parent = host.partition(".")[2]
    return bool(parent) and f"*.{parent}" in names
