"""The driver's promises on a real nginx: a refused tree leaves the last good one
serving, a burst of snapshots is one reload, changes under load fail no request, an
external nginx is only written, tested and reloaded, a crashed nginx is restarted."""

from __future__ import annotations

import dataclasses
import http.client
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from portway.drivers.nginx import NginxDriver, NginxSettings
from portway.drivers.nginx_config import render
from portway.drivers.nginx_options import STREAM_MODULE, NginxOptions
from portway.model import Backend
from portway.router import RouteTable, Snapshot
from tests.dataplane.conftest import Origin, proxy_for
from tests.dataplane.test_listeners import policy_for
from tests.drivers.conftest import NGINX, NginxRunner


def body(port: int, host: str, path: str = "/") -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path, headers={"Host": host})
    data = conn.getresponse().read()
    conn.close()
    return data


def test_refused_tree_keeps_the_last_good_one_serving(
    nginx: NginxRunner, make_origin: Callable[[str], Origin]
) -> None:
    a, b = make_origin("a"), make_origin("b")
    nginx.route(proxy_for("app.example.org", a.backend()))
    good = nginx.driver.loop.applied_version
    reloads = nginx.driver.reloads
    # Valid for Portway, refused by nginx: it resolves backend names when it loads.
    unresolvable = Backend(id="x", address="no-such-backend.invalid", port=80)
    bad = [proxy_for("app.example.org", b.backend()), proxy_for("new.example.org", unresolvable)]
    assert not nginx.publish(bad)
    assert nginx.driver.loop.applied_version == good
    assert nginx.driver.reloads == reloads
    assert "no-such-backend.invalid" in nginx.driver.errors[0]
    assert body(nginx.port, "app.example.org") == b"a / 0"  # the old tree still serves
    available = os.listdir(nginx.driver.conf / "sites-available")
    assert len(available) == 1 and available[0].startswith("app.example.org.")  # rolled back
    # The next snapshot is tried afresh.
    nginx.route(proxy_for("app.example.org", b.backend()))
    assert nginx.driver.errors == ()
    assert body(nginx.port, "app.example.org") == b"b / 0"


def test_a_burst_of_snapshots_is_one_reload(
    nginx: NginxRunner, make_origin: Callable[[str], Origin]
) -> None:
    origin = make_origin("o")
    before = nginx.driver.reloads
    for i in range(50):
        nginx.apply_nowait(
            nginx.snapshot([proxy_for(f"h{j}.example.org", origin.backend()) for j in range(i + 1)])
        )
    assert nginx.call(nginx.driver.wait_applied(nginx.version))
    reloads = nginx.driver.reloads - before
    print(f"50 snapshots in a burst: {reloads} reload(s)")
    assert reloads <= 2
    assert body(nginx.port, "h49.example.org") == b"o / 0"


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """What urllib3, httpx and browsers check before reusing an idle connection: has the
    server closed it (readable with nothing pending means EOF)?"""
    return conn.sock is not None and bool(select.select([conn.sock], [], [], 0)[0])


def _client_loop(port: int, stop: threading.Event, mode: str, stats: dict[str, int]) -> None:
    keepalive = mode != "fresh"
    conn: http.client.HTTPConnection | None = None
    while not stop.is_set():
        try:
            if conn is not None and mode == "checked" and _dropped(conn):
                conn.close()
                conn = None
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/", headers={"Host": "steady.example.org"})
            response = conn.getresponse()
            data = response.read()
            ok = response.status == 200 and data == b"steady / 0"
            stats["ok" if ok else "bad"] += 1
            if not keepalive or response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
        except (OSError, http.client.HTTPException) as err:
            stats["failed"] += 1
            stats.setdefault(type(err).__name__, 0)
            stats[type(err).__name__] += 1
            if conn is not None:
                conn.close()
            conn = None


def test_changes_under_load_fail_no_request(
    nginx: NginxRunner, make_origin: Callable[[str], Origin]
) -> None:
    steady, other = make_origin("steady"), make_origin("other")
    nginx.route(proxy_for("steady.example.org", steady.backend()))
    stop = threading.Event()
    stats = {mode: {"ok": 0, "bad": 0, "failed": 0} for mode in ("fresh", "checked", "naive")}
    clients = [
        threading.Thread(target=_client_loop, args=(nginx.port, stop, mode, counts))
        for mode, counts in stats.items()
    ]
    for client in clients:
        client.start()
    before = nginx.driver.reloads
    started = time.monotonic()
    steady_proxy = proxy_for("steady.example.org", steady.backend())
    for i in range(200):
        others = [proxy_for(f"o{j}.example.org", other.backend()) for j in range(i % 7)]
        nginx.apply_nowait(nginx.snapshot([steady_proxy, *others]))
        time.sleep(0.01)
    assert nginx.call(nginx.driver.wait_applied(nginx.version))
    elapsed = time.monotonic() - started
    stop.set()
    for client in clients:
        client.join(10)
    reloads = nginx.driver.reloads - before
    print(f"200 applies in {elapsed:.1f}s: {reloads} reloads; clients {stats}")
    assert stats["fresh"]["ok"] > 100
    assert stats["fresh"]["bad"] == stats["fresh"]["failed"] == 0, stats
    # A keep-alive client may lose a request when an old worker closes its idle
    # connection as it retires (the close race of every HTTP/1.1 server; RFC 9112 §9.3.1
    # lets clients retry it): measured and reported, never a wrong answer.
    for mode in ("checked", "naive"):
        assert stats[mode]["ok"] > 100 and stats[mode]["bad"] == 0, stats
        assert stats[mode]["failed"] <= reloads, stats
    assert 1 <= reloads < 200


def test_external_nginx_is_written_tested_and_reloaded(tmp_path: Path, origin: Origin) -> None:
    from tests.drivers.conftest import free_port

    port = free_port()
    prefix = tmp_path / "ext"
    runner = NginxRunner.__new__(NginxRunner)
    import asyncio

    from portway.drivers.nginx_options import NginxOptions

    options = NginxOptions(http=(("127.0.0.1", port),), worker_processes="1")
    settings = NginxSettings(prefix=prefix, binary=NGINX, external=True, options=options)
    runner.loop = asyncio.new_event_loop()
    runner.thread = threading.Thread(target=runner.loop.run_forever, daemon=True)
    runner.thread.start()
    runner.driver = NginxDriver(settings)
    runner.port, runner.version = port, 0
    runner.call(runner.driver.start())
    assert runner.driver.errors  # nobody runs nginx on this prefix yet: reported, not fatal
    # The operator starts nginx on Portway's tree.
    conf = str(prefix / "conf" / "nginx.conf")
    subprocess.run([NGINX, "-p", f"{prefix}/", "-c", conf], check=True)
    try:
        runner.route(proxy_for("app.example.org", origin.backend()))
        assert runner.driver.errors == ()
        assert body(port, "app.example.org") == b"one / 0"
    finally:
        runner.call(runner.driver.close())
        subprocess.run([NGINX, "-p", f"{prefix}/", "-c", conf, "-s", "quit"], check=False)
        runner.loop.call_soon_threadsafe(runner.loop.stop)
        runner.thread.join(5)
    # Closing the driver leaves the operator's nginx alone until it is told to quit.


def test_exited_nginx_is_restarted(nginx: NginxRunner, origin: Origin) -> None:
    nginx.route(proxy_for("app.example.org", origin.backend()))
    process = nginx.driver.daemon.process
    assert process is not None
    process.send_signal(signal.SIGTERM)  # nginx's fast shutdown: workers exit with it
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if (
                body(nginx.port, "app.example.org") == b"one / 0"
                and nginx.driver.daemon.process is not process
            ):
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        raise AssertionError(f"nginx was not restarted: {nginx.driver.errors}")
    assert "exited" in nginx.driver.errors[0]


def test_links_follow_backends_and_files_follow_proxies(nginx: NginxRunner, origin: Origin) -> None:
    """The spec's layout on disk: associate → file linked; last backend gone → unlinked
    (Portway's 503 page); proxy deleted → its file gone."""
    conf = nginx.driver.conf
    nginx.route(proxy_for("app.example.org", origin.backend()))
    (name,) = os.listdir(conf / "sites-available")
    link = conf / "sites-enabled" / name
    assert link.is_symlink() and os.readlink(link) == f"../sites-available/{name}"
    nginx.route(proxy_for("app.example.org"))
    assert not link.exists() and not link.is_symlink()
    assert os.listdir(conf / "sites-available") == [name]
    assert body(nginx.port, "app.example.org").startswith(b"<!DOCTYPE html>")
    nginx.route()
    assert os.listdir(conf / "sites-available") == os.listdir(conf / "servers") == []


def test_body_limit_gets_the_413_page(nginx: NginxRunner, origin: Origin) -> None:
    from portway.model import Limits
    from portway.protocol.pages import error_response

    nginx.route(proxy_for("app.example.org", origin.backend(), limits=Limits(max_body_bytes=10)))
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=5)
    conn.request("POST", "/", body=b"x" * 100, headers={"Host": "app.example.org"})
    response = conn.getresponse()
    assert response.status == 413
    assert response.read() == error_response(413, close=True).split(b"\r\n\r\n", 1)[1]
    assert not origin.seen


def test_a_missing_stream_module_refuses_relayed_ports_naming_the_package(tmp_path: Path) -> None:
    """The driver looks for the module's file; the render then refuses tcp and
    tls-passthrough proxies instead of writing a load_module nginx -t would reject."""
    missing = str(tmp_path / "ngx_stream_module.so")
    options = NginxOptions(stream_module=missing, listen_policy=policy_for(8772))
    driver = NginxDriver(NginxSettings(prefix=tmp_path / "nginx", options=options))
    assert driver.options.stream_module is None
    proxy = dataclasses.replace(
        proxy_for("db.example.org", Backend(id="b", address="127.0.0.1", port=9)),
        listen_port=8772,
        protocol="tcp",
    )
    tree = render(Snapshot(version=1, routes=RouteTable.build([proxy])), driver.options)
    assert [(p.field, p.served) for p in tree.problems] == [("protocol", False)]
    assert "libnginx-mod-stream" in tree.problems[0].message
    installed = NginxDriver(NginxSettings(prefix=tmp_path / "n2", options=NginxOptions()))
    assert installed.options.stream_module == STREAM_MODULE  # this machine has it
