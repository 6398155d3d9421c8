"""The server offers only Mozilla's intermediate key-exchange groups, checked with the
``openssl`` command-line client as the peer."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from portway.dataplane.tls import new_context


@pytest.fixture(autouse=True)
def _openssl() -> None:
    # scripts/test.sh installs Debian's openssl: its absence is a broken setup, not a skip.
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is missing: run scripts/test.sh (installs 'openssl')")


@pytest.fixture
def tls_port(tmp_path: Path) -> Iterator[int]:
    cert = trustme.CA().issue_cert("groups.test")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    ctx = new_context()
    ctx.load_cert_chain(chain, key)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"hi")
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    listener.close()


def handshake(port: int, *args: str) -> bool:
    done = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-servername",
            "groups.test",
            *args,
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=10,
    )
    return "Cipher is" in done.stdout and "(NONE)" not in done.stdout


@pytest.mark.parametrize("group", ["X25519", "P-256", "P-384"])
def test_mozilla_groups_are_offered(tls_port: int, group: str) -> None:
    assert handshake(tls_port, "-groups", group)


@pytest.mark.parametrize("group", ["X448", "P-521"])
def test_other_groups_are_refused(tls_port: int, group: str) -> None:
    assert not handshake(tls_port, "-groups", group)
    assert not handshake(tls_port, "-groups", group, "-tls1_2")
