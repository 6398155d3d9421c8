"""TLS sessions resume on any worker of any node (the tier shares its ticket keys through
the store), in TLS 1.2 and 1.3; a ticket past its key's acceptance window gets a full
handshake, which succeeds."""

from __future__ import annotations

import base64
import math
import os
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import _fresh_pg_database
from tests.drivers.conftest import NGINX
from tests.drivers.haproxy_runner import HAPROXY
from tests.integration.harness import (
    Backend,
    Portway,
    create_project_and_proxy,
    running_tier,
    wait_routed,
)
from tests.integration.test_tier import make_key

VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]
CONNECTIONS = 12  # with 2 workers, all of them on one worker: 1 chance in 2048


def _client(version: ssl.TLSVersion) -> ssl.SSLContext:
    # Each node of these tests made its own local CA: the client checks no certificate
    # (resumption skips the certificate anyway).
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


def _get(
    pw: Portway, ctx: ssl.SSLContext, session: ssl.SSLSession | None = None
) -> tuple[ssl.SSLSession, bool]:
    """One request over TLS (offering ``session``): the session to resume next time and
    whether this one was resumed. The answer is read whole, so that TLS 1.3's tickets,
    sent after the handshake, have arrived."""
    raw = socket.create_connection(("127.0.0.1", pw.https_port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname="www.portway.test", session=session) as tls:
        tls.sendall(b"GET / HTTP/1.1\r\nHost: www.portway.test\r\nConnection: close\r\n\r\n")
        data = b""
        while part := tls.recv(65536):
            data += part
        assert data.startswith(b"HTTP/1.1 404 "), data[:80]  # no such proxy; TLS works
        got = tls.session
        assert got is not None
        return got, tls.session_reused


def _resumed(pw: Portway, ctx: ssl.SSLContext, session: ssl.SSLSession) -> list[bool]:
    return [_get(pw, ctx, session)[1] for _ in range(CONNECTIONS)]


@pytest.fixture
def workers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Portway]:
    pw = Portway(tmp_path / "data", workers=2, extra=list(getattr(request, "param", [])))
    pw.start()
    yield pw
    pw.stop()


@pytest.mark.parametrize("version", VERSIONS, ids=["tls1.2", "tls1.3"])
def test_a_session_resumes_on_every_worker(workers: Portway, version: ssl.TLSVersion) -> None:
    ctx = _client(version)
    session, reused = _get(workers, ctx)
    assert not reused
    assert _resumed(workers, ctx, session) == [True] * CONNECTIONS


@pytest.mark.parametrize("workers", [["--tls-ticket-rotation", "0"]], indirect=True)
def test_with_rotation_off_each_worker_keeps_its_own_keys(workers: Portway) -> None:
    # The control: the connections above do land on both workers, and without shared
    # keys those on the other worker cannot resume.
    ctx = _client(ssl.TLSVersion.TLSv1_3)
    session, _ = _get(workers, ctx)
    resumed = _resumed(workers, ctx, session)
    assert True in resumed and False in resumed


@pytest.fixture
def tier(tmp_path: Path, postgres_url: str) -> Iterator[list[Portway]]:
    url = _fresh_pg_database(postgres_url)
    key = tmp_path / "secret.key"
    make_key(key)
    extra = ["--store", url, "--secret-key-file", str(key)]
    nodes = [
        Portway(tmp_path / f"node-{name}", workers=2, extra=[*extra, "--node-name", name])
        for name in ("a", "b")
    ]
    with running_tier(nodes):
        yield nodes


@pytest.mark.postgres
@pytest.mark.parametrize("version", VERSIONS, ids=["tls1.2", "tls1.3"])
def test_a_session_from_one_node_resumes_on_the_other(
    tier: list[Portway], version: ssl.TLSVersion
) -> None:
    a, b = tier
    ctx = _client(version)
    session, _ = _get(a, ctx)
    assert _resumed(b, ctx, session) == [True] * CONNECTIONS
    back, reused = _get(b, ctx, session)
    assert reused
    assert _get(a, ctx, back)[1]  # and a ticket B issued resumes on A


def _sleep_until(when: float) -> None:
    time.sleep(max(0.0, when - time.time()))


@pytest.mark.parametrize("workers", [["--tls-ticket-rotation", "1"]], indirect=True)
@pytest.mark.parametrize("version", VERSIONS, ids=["tls1.2", "tls1.3"])
def test_a_ticket_resumes_for_two_intervals_after_its_key_stops_and_then_no_more(
    workers: Portway, version: ssl.TLSVersion
) -> None:
    ctx = _client(version)
    # Start just inside a slot, so the timings below sit well inside the next ones.
    _sleep_until(math.floor(time.time()) + 1.1)
    slot = math.floor(time.time())
    session, _ = _get(workers, ctx)
    _sleep_until(slot + 1.5)  # another key encrypts now; the session's key still decrypts
    assert _get(workers, ctx, session)[1]
    _sleep_until(slot + 2.5)
    assert _get(workers, ctx, session)[1]
    _sleep_until(slot + 3.5)  # past slot + 1 + 2 intervals: the key is gone everywhere
    fresh, reused = _get(workers, ctx, session)
    assert not reused  # a full handshake, and the request was answered (in _get)
    assert _get(workers, ctx, fresh)[1]  # with a ticket under the current key


def _worker_pids(pw: Portway) -> list[int]:
    assert pw.proc is not None
    children = Path(f"/proc/{pw.proc.pid}/task/{pw.proc.pid}/children").read_text().split()
    return [
        int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def test_a_restarted_worker_gets_the_keys_before_it_serves(workers: Portway) -> None:
    ctx = _client(ssl.TLSVersion.TLSv1_3)
    session, _ = _get(workers, ctx)
    old = _worker_pids(workers)
    assert len(old) == 2
    for pid in old:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while True:  # refused until a new worker listens, once it has a snapshot
        try:
            reused = _get(workers, ctx, session)[1]
            break
        except OSError:
            assert time.monotonic() < deadline, "no new worker came up"
            time.sleep(0.05)
    assert reused  # the first handshake a new worker answers opens the ticket
    while len(pids := _worker_pids(workers)) < 2 or set(pids) & set(old):
        assert time.monotonic() < deadline, "the pool did not start two new workers"
        time.sleep(0.05)
    time.sleep(0.5)  # both listening
    assert _resumed(workers, ctx, session) == [True] * CONNECTIONS


DRIVEN = {
    "nginx": ["--dataplane", "nginx", "--nginx-binary", NGINX, "--nginx-prefix"],
    "haproxy": ["--dataplane", "haproxy", "--haproxy-binary", HAPROXY, "--haproxy-prefix"],
}


@dataclass
class Driven:
    node: Portway
    kind: str  # nginx or haproxy
    plane: Path  # the daemon's prefix

    def key_files(self) -> dict[str, bytes]:
        """What the daemon reads its ticket keys from: name → 80-byte key."""
        if self.kind == "nginx":
            return {p.name: p.read_bytes() for p in (self.plane / "tickets").iterdir()}
        text = (self.plane / "conf" / "certs" / "tls-ticket-keys.txt").read_text()
        return {line: base64.b64decode(line) for line in text.split()}

    def config(self) -> str:
        name = "nginx.conf" if self.kind == "nginx" else "haproxy.cfg"
        return (self.plane / "conf" / name).read_text()


@pytest.fixture(params=sorted(DRIVEN))
def driven(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Driven]:
    """A node whose data plane is a real nginx or HAProxy; the test's ``extra`` mark
    adds flags."""
    mark = request.node.get_closest_marker("extra")
    flags = list(mark.args) if mark else []
    plane = tmp_path / "plane"
    pw = Portway(tmp_path / "data", extra=[*DRIVEN[request.param], str(plane), *flags])
    pw.start()
    yield Driven(pw, request.param, plane)
    pw.stop()


def _reload(pw: Portway, backends: list[Backend]) -> None:
    """A change that HAProxy, too, applies by reloading: a new proxy (a backend section)."""
    before = _reloads(pw)
    create_project_and_proxy(pw, "alpha", "app.alpha.test", [backends[0].port])
    wait_routed(pw, "app.alpha.test", timeout=20)
    assert _reloads(pw) > before


def _reloads(pw: Portway) -> float:
    text = httpx.get(f"{pw.metrics_url}/metrics", timeout=5).text
    [line] = [x for x in text.splitlines() if x.startswith("portway_dataplane_reloads_total")]
    return float(line.split()[-1])


@pytest.mark.parametrize("version", VERSIONS, ids=["tls1.2", "tls1.3"])
def test_the_daemon_seals_tickets_with_the_tiers_keys_so_they_outlive_a_reload(
    driven: Driven, backends: list[Backend], version: ssl.TLSVersion
) -> None:
    node, ctx = driven.node, _client(version)
    session, _ = _get(node, ctx)
    assert _get(node, ctx, session)[1]
    keys = driven.key_files()
    assert len(keys) == 2  # this slot's and the next (a fresh store)
    assert {len(k) for k in keys.values()} == {80}
    directive = "ssl_session_ticket_key " if driven.kind == "nginx" else " tls-ticket-keys "
    assert directive in driven.config()
    if driven.kind == "nginx":
        assert {p.stat().st_mode & 0o777 for p in (driven.plane / "tickets").iterdir()} == {0o600}
    else:
        keyfile = driven.plane / "conf" / "certs" / "tls-ticket-keys.txt"
        assert keyfile.stat().st_mode & 0o777 == 0o600
        assert len(keyfile.read_text().split()) == 3  # HAProxy's count: the current one twice
    _reload(node, backends)
    assert _get(node, ctx, session)[1]


@pytest.mark.extra("--tls-ticket-rotation", "0")
def test_a_daemon_with_its_own_keys_loses_sessions_at_a_reload(
    driven: Driven, backends: list[Backend]
) -> None:
    # The control: the daemon makes new keys at each reload, so the test above can fail.
    node, ctx = driven.node, _client(ssl.TLSVersion.TLSv1_3)
    session, _ = _get(node, ctx)
    assert _get(node, ctx, session)[1]
    assert "ticket_key" not in driven.config() and "ticket-keys" not in driven.config()
    _reload(node, backends)
    assert not _get(node, ctx, session)[1]


@pytest.mark.extra("--tls-ticket-rotation", "2")
def test_the_daemon_follows_the_rotation_and_drops_expired_keys(driven: Driven) -> None:
    # Slots of 2 s: the keeper reads every 0.5 s and the daemon reloads after it, well
    # inside half a slot. nginx is given every live key (two slots of acceptance);
    # HAProxy holds three: the one before the current one, the current one and the next.
    gone_at = 7.0 if driven.kind == "nginx" else 5.0
    node, ctx = driven.node, _client(ssl.TLSVersion.TLSv1_3)
    slot = 2 * math.floor(time.time() / 2) + 2
    _sleep_until(slot + 1.0)  # half a slot in: the daemon has this slot's key
    session, _ = _get(node, ctx)  # sealed with this slot's key
    first = set(driven.key_files())
    _sleep_until(slot + 3.0)  # rotated (and reloaded); the session's key still opens
    assert _get(node, ctx, session)[1]
    _sleep_until(slot + gone_at)  # the key expired; the daemon was reloaded without it
    assert not _get(node, ctx, session)[1]
    now = set(driven.key_files())
    assert now != first and 2 <= len(now) <= 4 and len(first) <= 4
