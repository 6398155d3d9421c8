"""Certificate validation, SNI choice and the local CA, with trustme-made certificates."""

from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
import trustme

from portway.errors import ValidationError
from portway.tls.certs import covers, inspect_certificate
from portway.tls.local_ca import ensure_default_certificate
from portway.tls.sni import SniTable


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def pems(cert: trustme.LeafCert) -> tuple[str, str]:
    chain = "".join(b.bytes().decode() for b in cert.cert_chain_pems)
    return chain, cert.private_key_pem.bytes().decode()


def test_valid_certificate_reports_its_names(ca: trustme.CA) -> None:
    chain, key = pems(ca.issue_cert("wiki.example.org", "*.tools.example.org"))
    info = inspect_certificate(chain, key)
    assert info.names == ("*.tools.example.org", "wiki.example.org")
    assert len(info.fingerprint) == 64


def test_key_of_another_certificate_is_refused(ca: trustme.CA) -> None:
    chain, _ = pems(ca.issue_cert("a.example.org"))
    _, other_key = pems(ca.issue_cert("b.example.org"))
    with pytest.raises(ValidationError, match="does not match") as info:
        inspect_certificate(chain, other_key)
    assert info.value.field == "key"


def test_expired_certificate_is_refused(ca: trustme.CA) -> None:
    chain, key = pems(ca.issue_cert("a.example.org"))
    later = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(ValidationError, match="expired") as info:
        inspect_certificate(chain, key, now=later)
    assert info.value.field == "chain"


@pytest.mark.parametrize(
    ("chain", "key", "field"), [("junk", "junk", "chain"), (None, "junk", "key")]
)
def test_unparsable_pem_names_the_field(
    ca: trustme.CA, chain: str | None, key: str, field: str
) -> None:
    good_chain, _ = pems(ca.issue_cert("a.example.org"))
    with pytest.raises(ValidationError) as info:
        inspect_certificate(chain or good_chain, key)
    assert info.value.field == field


def test_name_coverage_follows_rfc6125() -> None:
    names = ("*.example.org", "exact.test")
    assert covers(names, "a.example.org")
    assert covers(names, "EXACT.test.")
    assert not covers(names, "a.b.example.org")
    assert not covers(names, "example.org")
    # a wildcard proxy needs the wildcard certificate itself
    assert covers(("*.example.org",), "*.example.org")
    assert not covers(("a.example.org",), "*.example.org")


def test_sni_prefers_exact_then_wildcard_then_default() -> None:
    table = SniTable([(["a.example.org"], "exact"), (["*.example.org"], "wild")], "default")
    assert table.lookup("A.example.org") == "exact"
    assert table.lookup("b.example.org") == "wild"
    assert table.lookup("x.b.example.org") == "default"
    assert table.lookup(None) == "default"


def test_local_ca_makes_a_usable_wildcard_certificate_once(tmp_path: Path) -> None:
    cert, key = ensure_default_certificate(tmp_path, "portway.test")
    assert (key.stat().st_mode & 0o777) == 0o600
    info = inspect_certificate(cert.read_text(), key.read_text())
    assert info.names == ("*.portway.test", "portway.test")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)  # the ssl module accepts what we wrote
    first = cert.read_bytes()
    ensure_default_certificate(tmp_path, "portway.test")
    assert cert.read_bytes() == first


def test_default_certificate_is_renewed_near_expiry_by_the_same_ca(tmp_path: Path) -> None:
    cert, key = ensure_default_certificate(tmp_path, "portway.test")
    first = inspect_certificate(cert.read_text(), key.read_text())
    assert first.not_after - first.not_before <= dt.timedelta(days=366)  # Mozilla's limit
    ca_before = (tmp_path / "ca.pem").read_bytes()
    late = first.not_after - dt.timedelta(days=10)
    ensure_default_certificate(tmp_path, "portway.test", now=late)
    renewed = inspect_certificate(cert.read_text(), key.read_text(), now=late)
    assert renewed.fingerprint != first.fingerprint
    assert (tmp_path / "ca.pem").read_bytes() == ca_before


def test_default_certificate_follows_a_new_default_zone(tmp_path: Path) -> None:
    cert, key = ensure_default_certificate(tmp_path, "one.test")
    ensure_default_certificate(tmp_path, "two.test")
    assert inspect_certificate(cert.read_text(), key.read_text()).names == (
        "*.two.test",
        "two.test",
    )


def test_an_operators_own_default_certificate_is_never_replaced(
    tmp_path: Path, ca: trustme.CA
) -> None:
    ensure_default_certificate(tmp_path, "portway.test")
    chain, key = pems(ca.issue_cert("*.other.example"))
    (tmp_path / "default.pem").write_text(chain)
    (tmp_path / "default-key.pem").write_text(key)
    far = dt.datetime(2999, 1, 1, tzinfo=dt.UTC)
    ensure_default_certificate(tmp_path, "portway.test", now=far)
    assert (tmp_path / "default.pem").read_text() == chain
