"""Shared session-ticket keys installed in OpenSSL through ctypes: two data planes' TLS
contexts (two processes' worth) with the same keys resume each other's sessions, for the
default certificate and for one chosen by SNI, in TLS 1.2 and 1.3; a callback failure
means no ticket, never a crash; the layout check refuses a pointer it cannot vouch for."""

from __future__ import annotations

import logging
import pickle
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme
from tests.dataplane.tls_origin import certificate, default_pair

from portway.dataplane.tls import TlsContexts, new_context
from portway.router import RouteTable
from portway.tls import openssl
from portway.tls.openssl import TicketKeyInstaller, ssl_ctx_pointer
from portway.tls.tickets import Schedule, TicketKey, TicketKeys

VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]
NOW = 1_800_000_030.0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _keys(*starts: float, interval: float = 60.0) -> TicketKeys:
    schedule = Schedule(interval)
    return TicketKeys(TicketKey.generate(s, schedule.expiry(s)) for s in starts)


def _serve(ctx: ssl.SSLContext) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def loop() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(16)
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


@pytest.fixture
def plane(ca: trustme.CA, tmp_path: Path) -> Iterator[Callable[[TicketKeys], int]]:
    """Starts the HTTPS side of a data plane (its own TlsContexts, as a worker has) with
    the default certificate and a tenant's ``shop.example.org``; returns its port."""
    chain, key = default_pair(ca, tmp_path)
    shop = certificate(ca.issue_cert("shop.example.org"), "shop")
    servers: list[Iterator[int]] = []

    def start(keys: TicketKeys) -> int:
        contexts = TlsContexts()
        contexts.set_ticket_keys(keys)  # before the listener exists, as in a worker
        contexts.load_default(chain, key)
        contexts.apply({"shop": shop}, RouteTable.build(()))
        server = _serve(contexts.listener_context())
        servers.append(server)
        return next(server)

    yield start
    for server in servers:
        next(server, None)


def _connect(
    port: int, ctx: ssl.SSLContext, sni: str, session: ssl.SSLSession | None = None
) -> tuple[ssl.SSLSession, bool, set[str]]:
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname=sni, session=session) as tls:
        tls.sendall(b"hi")
        assert tls.recv(16) == b"ok"  # read: TLS 1.3's tickets come after the handshake
        cert = tls.getpeercert() or {}
        names = {v for k, v in cert.get("subjectAltName", ()) if k == "DNS"}
        got = tls.session
        assert got is not None
        return got, tls.session_reused, names


def _client(ca: trustme.CA, version: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


@pytest.mark.parametrize("version", VERSIONS, ids=["tls1.2", "tls1.3"])
@pytest.mark.parametrize("sni", ["www.portway.test", "shop.example.org"])
def test_planes_with_the_same_keys_resume_each_others_sessions(
    plane: Callable[[TicketKeys], int], ca: trustme.CA, version: ssl.TLSVersion, sni: str
) -> None:
    start = Schedule(60.0).slot_start(time.time())
    keys = _keys(start)
    a, b, stranger = plane(keys), plane(keys), plane(_keys(start))
    ctx = _client(ca, version)
    session, reused, names = _connect(a, ctx, sni)
    assert not reused
    assert names == ({sni} if sni.startswith("shop") else {"*.portway.test", "portway.test"})
    assert _connect(b, ctx, sni, session)[1]
    assert _connect(a, ctx, sni, session)[1]
    assert not _connect(stranger, ctx, sni, session)[1]  # other keys: a full handshake


class _Broken:
    """Keys whose every use raises, as a bug in the callback would."""

    def encrypting(self, now: float) -> TicketKey | None:
        raise RuntimeError("boom")

    def decrypting(self, name: bytes, now: float) -> TicketKey | None:
        raise RuntimeError("boom")


def test_a_failing_callback_gives_no_ticket_and_the_handshake_succeeds(
    ca: trustme.CA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chain, key = default_pair(ca, tmp_path)
    ctx = new_context()
    ctx.load_cert_chain(chain, key)
    installer = TicketKeyInstaller()
    installer.keys = _Broken()  # type: ignore[assignment]
    assert installer.install(ctx)
    server = _serve(ctx)
    port = next(server)
    try:
        client = _client(ca, ssl.TLSVersion.TLSv1_2)
        with caplog.at_level(logging.ERROR, logger="portway.tls"):
            session, _, _ = _connect(port, client, "www.portway.test")
            assert not _connect(port, client, "www.portway.test", session)[1]
        assert "session ticket callback failed (RuntimeError)" in caplog.text
    finally:
        next(server, None)


def test_the_layout_check_refuses_a_pointer_whose_getters_disagree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = new_context()
    assert ssl_ctx_pointer(ctx)  # this CPython and OpenSSL: found and checked
    assert TicketKeyInstaller.available(ctx)
    libs = openssl._LIBS
    assert libs is not None
    real = libs.get_options
    monkeypatch.setattr(libs, "get_options", lambda p: real(p) ^ 1)  # a misread struct
    assert ssl_ctx_pointer(ctx) is None
    assert not TicketKeyInstaller().install(ctx)
    assert not TicketKeyInstaller.available(ctx)


def test_the_newest_started_key_encrypts_and_any_unexpired_key_decrypts() -> None:
    schedule = Schedule(60.0, accept_intervals=2)
    start = schedule.slot_start(NOW)
    assert schedule.wanted(NOW) == (start, start + 60)
    old, current, upcoming = (
        TicketKey.generate(s, schedule.expiry(s)) for s in (start - 60, start, start + 60)
    )
    keys = TicketKeys([upcoming, old, current])
    assert keys.encrypting(NOW) == current  # the upcoming one is known, not yet used
    assert keys.encrypting(start + 60) == upcoming
    assert keys.decrypting(old.name, NOW) == old
    assert keys.decrypting(upcoming.name, NOW) is None  # not started: no ticket uses it
    assert keys.decrypting(old.name, old.expires_at) is None
    assert old.expires_at == start - 60 + 3 * 60
    assert TicketKeys([]).encrypting(NOW) is None


def test_secrets_stay_out_of_reprs_and_survive_the_pipe() -> None:
    keys = _keys(NOW - 10)
    key = keys.encrypting(NOW)
    assert key is not None
    for text in (repr(key), repr(keys), str(keys)):
        assert key.aes_key.hex() not in text and repr(key.aes_key) not in text
        assert repr(key.hmac_key) not in text
    copied = pickle.loads(pickle.dumps(keys))
    assert copied.encrypting(NOW) == key
