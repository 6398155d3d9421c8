"""``--upstream-ca-file`` with ``--dataplane nginx|haproxy`` through a real ``portway
serve``: a TLS backend whose certificate chains to that file's CA (and names the
backend) is served, one whose certificate does not is refused with 502."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from tests.drivers.conftest import NGINX
from tests.drivers.haproxy_runner import HAPROXY
from tests.integration.harness import (
    Backend,
    Portway,
    start_backend,
    wait_routed,
)

PLANES = {
    "nginx": ["--dataplane", "nginx", "--nginx-binary", NGINX],
    "haproxy": ["--dataplane", "haproxy", "--haproxy-binary", HAPROXY],
}


def _tls_backend(name: str, issuer: trustme.CA) -> Backend:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    issuer.issue_cert("localhost").configure_cert(context)
    return start_backend(name, tls=context)


@pytest.fixture(params=sorted(PLANES))
def verifying(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, Portway, trustme.CA]]:
    """A Portway whose --upstream-ca-file holds one CA, and that CA."""
    kind = request.param
    ca = trustme.CA()
    ca_file = tmp_path / "backends-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    extra = [*PLANES[kind], f"--{kind}-prefix", str(tmp_path / kind)]
    extra += ["--upstream-ca-file", str(ca_file)]
    # "localhost" may resolve to ::1 as well, which the service checks too.
    pw = Portway(tmp_path / "data", extra=[*extra, "--backend-allow", "::1/128"])
    pw.start()
    yield kind, pw, ca
    pw.stop()


def test_a_backend_whose_certificate_does_not_chain_is_refused(
    verifying: tuple[str, Portway, trustme.CA],
) -> None:
    kind, pw, ca = verifying
    good = _tls_backend("good", ca)
    impostor = _tls_backend("impostor", trustme.CA())  # a name it may claim, the wrong CA
    try:
        pw.api("POST", "/v1/projects", json={"project": {"name": "alpha"}})
        for host, backend in (("ok.alpha.test", good), ("bad.alpha.test", impostor)):
            member = {"address": "localhost", "port": backend.port, "tls": True}
            body = {"proxy": {"hostname": host, "backends": [member]}}
            r = pw.api("POST", "/v1/alpha/proxies", json=body)
            assert r.status_code == 201, r.text
        wait_routed(pw, "ok.alpha.test", timeout=20)
        assert pw.get("ok.alpha.test", "/x").json()["backend"] == "good"
        # nginx answers the failed handshake 502. HAProxy's own check makes the same
        # handshake (``ssl`` applies to checks too), finds it refused and marks the member
        # down, so the proxy answers 503 (no server) from then on; until then, 502.
        refused = {502} if kind == "nginx" else {502, 503}
        deadline = time.monotonic() + 20
        while pw.get("bad.alpha.test").status_code == 404:  # until its snapshot applies
            assert time.monotonic() < deadline, "bad.alpha.test was never routed"
            time.sleep(0.02)
        statuses = {pw.get("bad.alpha.test").status_code for _ in range(5)}
        assert statuses <= refused, statuses
        assert impostor.seen == []  # no request crossed the failed handshake
        assert [s["path"] for s in good.seen] == ["/"] * (len(good.seen) - 1) + ["/x"]
    finally:
        good.stop()
        impostor.stop()
