"""The local CA and the default wildcard certificate made on first start, so that HTTPS
works before an operator installs real certificates. Files live in the data dir:
``ca.pem``/``ca-key.pem`` and ``default.pem``/``default-key.pem`` (keys mode 0600)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, data: bytes, *, secret: bool) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # atomic: a crash never leaves half a key


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def ensure_default_certificate(data_dir: Path, zone: str) -> tuple[Path, Path]:
    """Create the CA and a ``*.zone`` + ``zone`` certificate if missing; return the
    certificate chain and key paths."""
    cert_path, key_path = data_dir / "default.pem", data_dir / "default-key.pem"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    now = dt.datetime.now(dt.UTC)
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Portway local CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = _key()
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"*.{zone}")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(f"*.{zone}"), x509.DNSName(zone)]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    encoding = serialization.Encoding.PEM
    data_dir.mkdir(parents=True, exist_ok=True)
    _write(data_dir / "ca-key.pem", _pem(ca_key), secret=True)
    _write(data_dir / "ca.pem", ca.public_bytes(encoding), secret=False)
    _write(key_path, _pem(leaf_key), secret=True)
    _write(cert_path, leaf.public_bytes(encoding) + ca.public_bytes(encoding), secret=False)
    return cert_path, key_path
