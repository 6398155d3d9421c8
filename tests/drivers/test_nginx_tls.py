"""The certificate files a real nginx is given by Portway: keys written 0600, and a
certificate no proxy uses any more leaves the tree. (What clients see over HTTPS, on
every data plane, is in tests/conformance/test_tls.py.)"""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Callable
from pathlib import Path

import trustme

from portway.model import TlsSettings
from tests.dataplane.conftest import Origin, proxy_for
from tests.dataplane.tls_origin import certificate, default_pair
from tests.drivers.conftest import NginxRunner


def test_keys_are_written_0600_and_unused_certificates_leave_the_tree(
    ca: trustme.CA, make_nginx: Callable[..., NginxRunner], tmp_path: Path, origin: Origin
) -> None:
    chain, key = default_pair(ca, tmp_path)
    nginx = make_nginx(default_certificate=(str(chain), str(key)))
    certs = [certificate(ca.issue_cert(f"{n}.example.org"), n) for n in ("a", "b")]
    proxies = [
        dataclasses.replace(
            proxy_for(f"{c.id}.example.org", origin.backend()), tls=TlsSettings(certificate=c.id)
        )
        for c in certs
    ]
    assert nginx.publish(proxies, certs), nginx.driver.errors
    keys = list((nginx.driver.conf / "certs").glob("*.key"))
    assert len(keys) == 2
    assert {stat.S_IMODE(k.stat().st_mode) for k in keys} == {0o600}
    assert nginx.publish(proxies[1:], certs)
    assert len(list((nginx.driver.conf / "certs").glob("*.key"))) == 1
