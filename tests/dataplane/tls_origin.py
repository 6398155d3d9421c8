"""TLS material for the tests of every data plane: TLS-only origin servers (the threaded
origin of ``conftest`` with its accepted sockets wrapped in TLS), a default certificate
pair on disk and tenant ``Certificate`` objects, all from a trustme CA."""

from __future__ import annotations

import http.server
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from portway.model import Certificate
from portway.tls.certs import inspect_certificate
from tests.dataplane.conftest import Origin, _Handler
from tests.http_server import TestHTTPServer


class _TlsServer(TestHTTPServer):
    """A threaded HTTP server whose accepted sockets speak TLS; the handshake runs in
    the handler's thread (on its first read), so a bad client never stalls accept()."""

    context: ssl.SSLContext

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        return self.context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        ), address

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # refused handshakes are what some tests are about


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def make_tls_origin(ca: trustme.CA) -> Iterator[Callable[..., Origin]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def make(name: str, *, issuer: trustme.CA | None = None, names: tuple[str, ...] = ()) -> Origin:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf = (issuer or ca).issue_cert(*(names or ("127.0.0.1", "localhost")))
        leaf.configure_cert(context)
        handler = type("H", (_Handler,), {})
        server = _TlsServer(("127.0.0.1", 0), handler)
        server.context = context
        server.daemon_threads = True
        origin = Origin(name, server)
        handler.origin = origin  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return origin

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def default_pair(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    """The listener's default certificate (``*.portway.test``) as chain and key files."""
    leaf = ca.issue_cert("*.portway.test", "portway.test")
    chain, key = directory / "default.pem", directory / "default-key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    chain.write_bytes(b"".join(b.bytes() for b in leaf.cert_chain_pems))
    return chain, key


def certificate(leaf: trustme.LeafCert, cert_id: str, project: str = "p") -> Certificate:
    """A tenant's certificate, as a snapshot carries it."""
    chain = "".join(b.bytes().decode() for b in leaf.cert_chain_pems)
    key = leaf.private_key_pem.bytes().decode()
    info = inspect_certificate(chain, key)
    return Certificate(
        id=cert_id,
        project=project,
        name=cert_id,
        chain_pem=chain,
        key_pem=key,
        names=info.names,
        fingerprint=info.fingerprint,
    )
