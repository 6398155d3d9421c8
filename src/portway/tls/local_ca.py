"""The local CA and the default wildcard certificate made on first start, so that HTTPS
works before an operator installs real certificates. Files live in the data dir:
``ca.pem``/``ca-key.pem`` and ``default.pem``/``default-key.pem``, all mode 0600 (the
data dir is private; clients that should trust ``ca.pem`` get a copy from the operator)."""

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


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # a .tmp left by a crash may have had another mode
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


# Mozilla's intermediate profile allows leaf certificates of at most 366 days; the
# certificate is renewed at start-up once less than RENEW_BEFORE is left.
LEAF_LIFETIME = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)


def _still_good(cert_path: Path, key_path: Path, zone: str, now: dt.datetime) -> bool:
    """Keep the files unless they are ours and due: an operator's own certificate put in
    their place is never replaced, whatever its names or expiry."""
    if not (cert_path.exists() and key_path.exists()):
        return False
    leaf = x509.load_pem_x509_certificates(cert_path.read_bytes())[0]
    ca_path = cert_path.parent / "ca.pem"
    ours = (
        ca_path.exists()
        and leaf.issuer == x509.load_pem_x509_certificate(ca_path.read_bytes()).subject
    )
    if not ours:
        return True
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    names = set(san.value.get_values_for_type(x509.DNSName))
    return f"*.{zone}" in names and leaf.not_valid_after_utc - now > RENEW_BEFORE


def ensure_default_certificate(
    data_dir: Path, zone: str, *, now: dt.datetime | None = None
) -> tuple[Path, Path]:
    """Create the CA and a ``*.zone`` + ``zone`` certificate when missing, when made for
    another zone, or when close to expiry; return the chain and key paths."""
    cert_path, key_path = data_dir / "default.pem", data_dir / "default-key.pem"
    now = now or dt.datetime.now(dt.UTC)
    if _still_good(cert_path, key_path, zone, now):
        return cert_path, key_path
    ca_key, ca = _load_or_make_ca(data_dir, now)
    _write_leaf(data_dir, zone, ca_key, ca, now)
    return cert_path, key_path


def _load_or_make_ca(
    data_dir: Path, now: dt.datetime
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The existing CA (so clients that trust ca.pem keep trusting renewals), or a new one."""
    ca_path, ca_key_path = data_dir / "ca.pem", data_dir / "ca-key.pem"
    if ca_path.exists() and ca_key_path.exists():
        key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        if isinstance(key, ec.EllipticCurvePrivateKey) and cert.not_valid_after_utc > now:
            return key, cert
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
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(data_dir / "ca-key.pem", _pem(ca_key))
    _write(data_dir / "ca.pem", ca.public_bytes(serialization.Encoding.PEM))
    return ca_key, ca


def _write_leaf(
    data_dir: Path,
    zone: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    now: dt.datetime,
) -> None:
    ca_name = ca.subject
    leaf_key = _key()
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"*.{zone}")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + LEAF_LIFETIME)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(f"*.{zone}"), x509.DNSName(zone)]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    encoding = serialization.Encoding.PEM
    _write(data_dir / "default-key.pem", _pem(leaf_key))
    chain = leaf.public_bytes(encoding) + ca.public_bytes(encoding)
    _write(data_dir / "default.pem", chain)
