"""Client limits on a real HAProxy (stick tables, ``src`` ACLs): a client over its rate
gets Portway's 429 page while another loopback source address is not held back, a
banned range gets the 403 page and never reaches the backend, the node's flags are the
default of every proxy; and the pure rendering: the window a rate becomes, what is
reported, what no tenant string can reach."""

from __future__ import annotations

import http.client
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from portway.drivers import haproxy_limits
from portway.drivers.haproxy_config import render
from portway.drivers.haproxy_limits import Window
from portway.drivers.haproxy_options import HaproxyOptions
from portway.drivers.haproxy_plan import plan
from portway.errors import ConfigError
from portway.limits.bucket import Rate
from portway.model import Limits, Proxy
from portway.protocol.pages import error_response
from portway.router import RouteTable, Snapshot
from tests.dataplane.conftest import Origin, proxy_for
from tests.drivers.haproxy_runner import HAPROXY, HaproxyRunner

OPTIONS = HaproxyOptions(conf_dir="/tmp/pw-h/conf", run_dir="/tmp/pw-h/run")


def get(port: int, source: str, host: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=(source, 0))
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def page(status: int) -> bytes:
    return error_response(status, close=False).split(b"\r\n\r\n", 1)[1]


def _render(options: HaproxyOptions, *proxies: Proxy) -> dict[str, str]:
    config = render(Snapshot(version=1, routes=RouteTable.build(proxies)), options)
    assert [p for p in config.problems if not p.served] == []
    return dict(config.files)


# -- the window a rate becomes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "window", "retry_after"),
    [
        (Rate.of(0.5, 2), Window(4000, 2), 4),
        (Rate.of(10, None), Window(1000, 10), 1),  # burst: one second's worth
        (Rate.of(10, 20), Window(2000, 20), 2),
        (Rate.of(4, 1), Window(250, 1), 1),  # Retry-After is at least 1
        (Rate.of(1e6, 1), Window(1, 1), 1),  # a millisecond at least
        (Rate.of(1e-9, 1), Window(1_000_000_000, 1), 1_000_000),  # two windows fit expire
    ],
)
def test_a_rate_is_its_burst_over_burst_by_rate_seconds(
    rate: Rate, window: Window, retry_after: int
) -> None:
    assert Window.of(rate) == window
    assert window.retry_after == retry_after


@pytest.mark.parametrize(
    ("rate", "burst", "reported"), [(10, 20, False), (3, 1, True), (1e6, 1, True)]
)
def test_a_rate_whole_milliseconds_change_is_reported(
    rate: float, burst: int, reported: bool
) -> None:
    proxy = proxy_for("a.example.org", limits=Limits(rate=rate, burst=burst))
    found = list(haproxy_limits.degradations(proxy, OPTIONS))
    assert bool(found) == reported
    if reported:
        assert found[0][0] == "limits.rate" and "applied as" in found[0][1]


def test_a_node_rate_haproxy_rounds_is_said_once() -> None:
    rounded = HaproxyOptions(rate_limit=3, rate_burst=1)
    message = haproxy_limits.node_degradation(rounded)
    assert message is not None and message.startswith("--rate-limit:") and "333 ms" in message
    assert haproxy_limits.node_degradation(HaproxyOptions(rate_limit=2, rate_burst=6)) is None
    assert haproxy_limits.node_degradation(OPTIONS) is None
    plain = proxy_for("plain.example.org")
    assert list(haproxy_limits.degradations(plain, rounded)) == []  # not on every proxy


def test_a_changed_range_list_is_a_reload_that_loads_the_new_file() -> None:
    before = proxy_for("a.example.org", limits=Limits(deny=("192.0.2.0/24",)))
    after = proxy_for("a.example.org", limits=Limits(deny=("198.51.100.0/24",)))
    running = render(Snapshot(version=1, routes=RouteTable.build([before])), OPTIONS)
    new = render(Snapshot(version=2, routes=RouteTable.build([after])), OPTIONS)
    assert running.static == new.static  # the same file name in haproxy.cfg
    decision = plan(running, new, OPTIONS.conf_dir + "/hosts.map")
    assert decision.reload and "deny/" in decision.reason


def test_a_proxy_without_its_own_rate_takes_the_nodes_and_counts_its_own_clients() -> None:
    node = HaproxyOptions(conf_dir="/c", rate_limit=2, rate_burst=6)
    own = proxy_for("own.example.org", limits=Limits(rate=1, burst=3))
    plain = proxy_for("plain.example.org")
    assert haproxy_limits.window(own, node) == Window(3000, 3)
    assert haproxy_limits.window(plain, node) == Window(3000, 6)
    assert haproxy_limits.window(plain, OPTIONS) is None
    assert haproxy_limits.rules(plain, OPTIONS) == [] and haproxy_limits.table(plain, OPTIONS) == ""
    assert haproxy_limits.table_name(own) != haproxy_limits.table_name(plain)


def test_the_rendered_rules_ranges_and_page() -> None:
    options = HaproxyOptions(conf_dir="/c", run_dir="/r", deny_clients=("192.0.2.7/24",))
    limits = Limits(rate=0.5, burst=2, deny=("2001:DB8::1/32", "198.51.100.0/24"))
    proxy = proxy_for("a.example.org", limits=limits)
    files = _render(options, proxy)
    table = haproxy_limits.table_name(proxy)
    text = files["haproxy.cfg"]
    section = text[text.index("backend " + table.removesuffix("_rl") + "\n") :]
    assert (
        "    http-request deny deny_status 403 if { src -f '/c/deny-node.acl' }\n"
        f"    http-request deny deny_status 403 if {{ src -f '/c/deny/{table[:-3]}.acl' }}\n"
        f"    http-request track-sc0 src table {table}\n"
        "    http-request deny deny_status 429 errorfile '/c/errors/429-4.http'"
        " if { sc_gpc_rate(0,0) ge 2 }\n"
        "    http-request sc-inc-gpc(0,0)\n"
    ) in section
    assert (
        f"backend {table}\n"
        "    stick-table type ipv6 size 100000 expire 8000ms store gpc_rate(1,4000ms)\n"
    ) in section
    assert files["deny-node.acl"] == "192.0.2.0/24\n"  # canonical: host bits dropped
    assert files[f"deny/{table[:-3]}.acl"] == "2001:db8::/32\n198.51.100.0/24\n"
    page_file = files["errors/429-4.http"].encode()
    assert b"\r\nRetry-After: 4\r\n" in page_file and page_file.endswith(page(429))
    assert "errorfile 403 '/c/errors/403.http'" in text and "errors/403.http" in files


@pytest.mark.parametrize(
    "cidr", ["10.0.0.0/8 ", "10.0.0.0/8\n0.0.0.0/0", "10.0.0.0/8' }", "-f /etc/passwd", "::/0%x"]
)
def test_a_range_is_an_address_range_or_the_proxy_is_refused(cidr: str) -> None:
    """Built past the API's validation: the renderer parses each range again."""
    proxy = proxy_for("a.example.org", limits=Limits(deny=("192.0.2.0/24", cidr)))
    config = render(Snapshot(version=1, routes=RouteTable.build([proxy])), OPTIONS)
    assert {(p.field, p.served) for p in config.problems} == {("limits.deny", False)}
    assert cidr not in "".join(config.files.values())
    with pytest.raises(ConfigError):
        haproxy_limits.acl([cidr])


@pytest.mark.parametrize(
    "options",
    [
        HaproxyOptions(deny_clients=("not-a-range",)),
        HaproxyOptions(rate_limit=5, trusted_proxies=("10.0.0.0/8",)),
        HaproxyOptions(deny_clients=("192.0.2.0/24",), trusted_proxies=("10.0.0.0/8",)),
    ],
)
def test_node_limits_haproxy_cannot_apply_are_refused_whole(options: HaproxyOptions) -> None:
    with pytest.raises(ConfigError):
        render(Snapshot(version=1), options)


def test_the_rendered_limits_pass_haproxy_check(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    options = HaproxyOptions(
        conf_dir=str(conf), run_dir=str(tmp_path), rate_limit=3, deny_clients=("::1/128",)
    )
    proxies = [
        proxy_for("a.example.org", limits=Limits(rate=1 / 7, burst=3, deny=("10.0.0.0/8",))),
        proxy_for("b.example.org", limits=Limits(deny=("fd00::/8",))),
        proxy_for("c.example.org"),
    ]
    for path, text in _render(options, *proxies).items():
        (conf / path).parent.mkdir(parents=True, exist_ok=True)
        (conf / path).write_text(text)
    check = subprocess.run([HAPROXY, "-c", "-f", str(conf / "haproxy.cfg")], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr


# -- a real HAProxy -----------------------------------------------------------------------


def test_a_client_over_its_rate_gets_429_and_another_address_does_not(
    haproxy: HaproxyRunner, origin: Origin
) -> None:
    haproxy.route(proxy_for("app.example.org", origin.backend(), limits=Limits(rate=0.5, burst=2)))
    assert haproxy.driver.problems == ()
    codes = [get(haproxy.port, "127.0.0.2", "app.example.org")[0] for _ in range(2)]
    status, headers, body = get(haproxy.port, "127.0.0.2", "app.example.org")
    assert [*codes, status] == [200, 200, 429]
    assert headers["retry-after"] == "4" and body == page(429)
    assert get(haproxy.port, "127.0.0.3", "app.example.org")[0] == 200
    assert len(origin.seen) == 3


def test_a_client_that_waits_retry_after_passes_again(
    haproxy: HaproxyRunner, origin: Origin
) -> None:
    haproxy.route(proxy_for("app.example.org", origin.backend(), limits=Limits(rate=4, burst=2)))
    assert [get(haproxy.port, "127.0.0.2", "app.example.org")[0] for _ in range(3)] == [
        200,
        200,
        429,
    ]
    _, headers, _ = get(haproxy.port, "127.0.0.2", "app.example.org")
    time.sleep(int(headers["retry-after"]))
    assert get(haproxy.port, "127.0.0.2", "app.example.org")[0] == 200


def test_a_banned_range_gets_403_and_the_backend_never_sees_it(
    haproxy: HaproxyRunner, origin: Origin
) -> None:
    banned = Limits(deny=("127.0.0.2/32",))
    haproxy.route(proxy_for("app.example.org", origin.backend(), limits=banned))
    status, _, body = get(haproxy.port, "127.0.0.2", "app.example.org")
    assert (status, body) == (403, page(403))
    assert origin.seen == []
    assert get(haproxy.port, "127.0.0.3", "app.example.org")[0] == 200
    assert len(origin.seen) == 1


def test_the_nodes_flags_are_every_proxys_default(
    make_haproxy: Callable[..., HaproxyRunner], origin: Origin
) -> None:
    haproxy = make_haproxy(rate_limit=0.5, rate_burst=2, deny_clients=("127.0.0.9/32",))
    own = Limits(rate=100, burst=10)
    haproxy.route(
        proxy_for("plain.example.org", origin.backend()),
        proxy_for("own.example.org", origin.backend(), limits=own),
    )
    plain = [get(haproxy.port, "127.0.0.2", "plain.example.org")[0] for _ in range(3)]
    assert plain == [200, 200, 429]  # the node's rate
    assert [get(haproxy.port, "127.0.0.2", "own.example.org")[0] for _ in range(5)] == [200] * 5
    assert get(haproxy.port, "127.0.0.3", "plain.example.org")[0] == 200  # its own bucket
    seen = len(origin.seen)
    for host in ("plain.example.org", "own.example.org"):
        status, _, body = get(haproxy.port, "127.0.0.9", host)
        assert (status, body) == (403, page(403))
    assert len(origin.seen) == seen
    # The table is keyed by each client's address: two entries, one per source.
    proxy = proxy_for("plain.example.org", origin.backend())
    entries = haproxy.ask(f"show table {haproxy_limits.table_name(proxy)}")
    assert "key=::ffff:127.0.0.2 " in entries and "key=::ffff:127.0.0.3 " in entries
