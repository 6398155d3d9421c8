"""The certificate files a real HAProxy is given by Portway: PEMs (chain and key)
written 0600, and a certificate no proxy uses any more leaves the tree. (What clients
see over HTTPS, on every data plane, is in tests/conformance/test_tls.py.)"""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Callable
from pathlib import Path

import trustme

from portway.model import TlsSettings
from tests.dataplane.conftest import Origin, proxy_for
from tests.dataplane.tls_origin import certificate, default_pair
from tests.drivers.haproxy_runner import HaproxyRunner


def test_pems_are_written_0600_and_unused_certificates_leave_the_tree(
    ca: trustme.CA, make_haproxy: Callable[..., HaproxyRunner], tmp_path: Path, origin: Origin
) -> None:
    haproxy = make_haproxy(default_certificate=default_pair(ca, tmp_path))
    certs = [certificate(ca.issue_cert(f"{n}.example.org"), n) for n in ("a", "b")]
    proxies = [
        dataclasses.replace(
            proxy_for(f"{c.id}.example.org", origin.backend()), tls=TlsSettings(certificate=c.id)
        )
        for c in certs
    ]
    assert haproxy.publish(proxies, certs), haproxy.driver.errors
    pems = list((haproxy.driver.conf / "certs").glob("*.pem"))
    assert len(pems) == 3  # the two attached and the default
    assert {stat.S_IMODE(p.stat().st_mode) for p in pems} == {0o600}
    assert haproxy.publish(proxies[1:], certs)
    assert len(list((haproxy.driver.conf / "certs").glob("*.pem"))) == 2
