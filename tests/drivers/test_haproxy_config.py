"""The HAProxy renderer and planner as pure functions: tenant strings never change the
structure of the configuration, and a snapshot diff becomes Runtime API commands or a
reload by a rule that can be read from the cases below."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from portway.drivers.haproxy_config import HaproxyConfig, render
from portway.drivers.haproxy_options import HaproxyOptions
from portway.drivers.haproxy_plan import plan
from portway.drivers.haproxy_syntax import quote, word
from portway.errors import ConfigError
from portway.model import (
    Backend,
    HealthCheck,
    Limits,
    Proxy,
    SessionPersistence,
    StreamSettings,
    Timeouts,
    TlsSettings,
)
from portway.model.listen_policy import ListenPolicy, PortRange
from portway.router import RouteTable, Snapshot
from tests.drivers.conftest import free_port
from tests.drivers.haproxy_runner import HAPROXY

PAYLOADS = (
    "' }\nbackend evil\n    http-request return status 200 #",
    "x\n    use_backend pwned",
    "a${HOME}\"b'c\\",
    "x;show info",
    "a b",
)
GOOD = Backend(id="b", address="127.0.0.1", port=9001)
OPTIONS = HaproxyOptions(conf_dir="/tmp/pw-h/conf", run_dir="/tmp/pw-h/run")
MAP = "/tmp/pw-h/conf/hosts.map"


def _proxy(pid: str, **kw: object) -> Proxy:
    fields: dict[str, object] = {"hostname": "ok.example.org", "backends": (GOOD,)}
    fields.update(kw)
    return Proxy(id=pid, project="p", **fields)  # type: ignore[arg-type]


def _render(*proxies: Proxy, layout: HaproxyConfig | None = None) -> HaproxyConfig:
    snapshot = Snapshot(version=1, routes=RouteTable.build(proxies))
    return render(snapshot, OPTIONS, layout.layout() if layout else None)


def _malicious() -> list[Proxy]:
    """Proxies built directly, past the API's validation, each with a payload in one
    tenant-chosen field that reaches the configuration or a Runtime API command."""
    out = []
    for i, payload in enumerate(PAYLOADS):
        out += [
            _proxy(f"host{i}", hostname=f"h{i}.example.org{payload}"),
            _proxy(f"path{i}", hostname=f"p{i}.example.org", path_prefix=f"/x{payload}"),
            _proxy(
                f"addr{i}",
                hostname=f"a{i}.example.org",
                backends=(Backend(id="x", address=f"10.0.0.1{payload}", port=80),),
            ),
            _proxy(
                f"hash{i}",
                hostname=f"k{i}.example.org",
                algorithm="consistent_hash",
                hash_key=f"header:x{payload}",
            ),
            _proxy(
                f"cook{i}",
                hostname=f"c{i}.example.org",
                session_persistence=SessionPersistence(type="cookie", cookie_name=f"c{payload}"),
            ),
            _proxy(
                f"chck{i}",
                hostname=f"u{i}.example.org",
                health_check=HealthCheck(path=f"/h{payload}"),
            ),
            _proxy(
                f"deny{i}",
                hostname=f"d{i}.example.org",
                limits=Limits(rate=5, deny=("192.0.2.0/24", f"10.0.0.0/8{payload}")),
            ),
        ]
    return out


def _structure(config: HaproxyConfig) -> list[str]:
    """Every keyword that starts a line and every section, outside quoted words."""
    text = config.files["haproxy.cfg"]
    text = re.sub(r"'[^']*'", "'Q'", text)
    text = re.sub(r"#[^\n]*", "", text)
    return re.findall(r"^\s*[a-z_-]+", text, flags=re.M)


def test_tenant_strings_cannot_inject_haproxy_syntax() -> None:
    clean = _render(_proxy("good"))
    config = _render(_proxy("good"), *_malicious())
    refused = {p.proxy_id for p in config.problems if not p.served}
    assert refused == {p.id for p in _malicious()}
    fields = {p.proxy_id[:4]: p.field for p in config.problems}
    assert fields["host"] == "hostname" and fields["path"] == "path_prefix"
    assert fields["addr"] == "backends[0].address" and fields["hash"] == "hash_key"
    assert fields["cook"].startswith("session_persistence")
    assert fields["chck"].startswith("health_check")
    assert fields["deny"] == "limits.deny"
    everything = "".join(config.files.values())
    for payload in PAYLOADS:
        assert payload not in everything
    assert "pwned" not in everything and "evil" not in everything
    assert _structure(config) == _structure(clean)
    assert config.hosts == clean.hosts == {"ok.example.org": config.hosts["ok.example.org"]}


def test_quoting_is_the_second_wall() -> None:
    assert quote("a'b") == "'a'\\''b'"
    assert quote("$HOME #x") == "'$HOME #x'"
    for bad in ("a\nb", "caf\u00e9", "x\x00"):
        with pytest.raises(ConfigError):
            quote(bad)
    for bad in ("a b", "a;b", "a\nb", "", "a/b"):
        with pytest.raises(ConfigError):
            word(bad)


def test_quoted_word_reads_back_exactly_in_real_haproxy(tmp_path: Path) -> None:
    """HAProxy itself reads ``quote(s)`` as ``s``: a path ACL for a string full of
    configuration syntax matches exactly that path, and nothing else."""
    weird = "/a;b'c$HOME!d(e)*f"  # HAProxy refuses '#', '{', '"' in a request path
    port = free_port()
    cfg = tmp_path / "t.cfg"
    cfg.write_text(
        "defaults\n  mode http\n  timeout client 5s\n  timeout connect 5s\n"
        "  timeout server 5s\nfrontend f\n"
        f"  bind 127.0.0.1:{port}\n"
        f"  http-request return status 200 content-type text/plain string hit"
        f" if {{ path -m str {quote(weird)} }}\n"
        "  http-request return status 404 content-type text/plain string miss\n"
    )
    check = subprocess.run([HAPROXY, "-c", "-q", "-f", str(cfg)], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    server = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)])
    try:
        import socket
        import time

        def status(path: str) -> bytes:
            for _ in range(50):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                        return s.recv(4096).split(b"\r\n\r\n", 1)[1]
                except ConnectionRefusedError:
                    time.sleep(0.05)
            raise AssertionError("haproxy did not listen")

        assert status(weird) == b"hit"
        assert status("/a") == b"miss"
    finally:
        server.terminate()
        server.wait(5)


def test_full_featured_configuration_passes_haproxy_check(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    options = HaproxyOptions(
        conf_dir=str(conf),
        run_dir=str(tmp_path),
        https=(("127.0.0.1", 8443),),
        default_certificate=True,
        trusted_proxies=("10.0.0.0/8",),
    )
    proxies = [
        _proxy(
            "a",
            backends=(GOOD, dataclasses.replace(GOOD, id="c", weight=0, backup=True)),
            algorithm="weighted_round_robin",
            health_check=HealthCheck(path="/h", expected_codes="200-299,302"),
            tls=TlsSettings(redirect_http=True, hsts=True),
        ),
        _proxy("w", hostname="*.example.org", algorithm="least_conn"),
        _proxy("t", hostname="t.example.org", path_prefix="/tool", algorithm="random"),
        _proxy("h", hostname="t.example.org", algorithm="consistent_hash", hash_key="cookie:s"),
        _proxy(
            "s", hostname="s.example.org", session_persistence=SessionPersistence(type="source_ip")
        ),
    ]
    config = render(Snapshot(version=1, routes=RouteTable.build(proxies)), options)
    for path, text in config.files.items():
        (conf / path).parent.mkdir(parents=True, exist_ok=True)
        (conf / path).write_text(text)
    import trustme

    from tests.drivers.conftest import certificate  # noqa: F401 (trustme below)

    leaf = trustme.CA().issue_cert("portway.test")
    pem = leaf.cert_chain_pems[0].bytes() + leaf.private_key_pem.bytes()
    (conf / "certs").mkdir(exist_ok=True)
    (conf / "certs" / "default.pem").write_bytes(pem)
    check = subprocess.run([HAPROXY, "-c", "-f", str(conf / "haproxy.cfg")], capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "http-check expect rstatus '^(2[0-9][0-9]|302)$'" in config.files["haproxy.cfg"]


# -- the plan: Runtime API commands or a reload -------------------------------------------


def test_a_weight_change_is_one_runtime_command() -> None:
    before = _render(_proxy("a", algorithm="weighted_round_robin"))
    after = _render(
        _proxy(
            "a", algorithm="weighted_round_robin", backends=(dataclasses.replace(GOOD, weight=5),)
        ),
        layout=before,
    )
    decided = plan(before, after, MAP)
    assert not decided.reload
    name = next(iter(after.slots))
    assert decided.commands == (f"set server {name}/s1 weight 5",)
    drained = _render(_proxy("a", backends=(dataclasses.replace(GOOD, weight=0),)), layout=before)
    assert plan(before, drained, MAP).commands == (f"set server {name}/s1 weight 0",)


def test_members_added_and_removed_take_spare_slots_without_reload() -> None:
    before = _render(_proxy("a"))
    other = Backend(id="o", address="10.0.0.7", port=8080)
    added = _render(_proxy("a", backends=(GOOD, other)), layout=before)
    name = next(iter(added.slots))
    decided = plan(before, added, MAP)
    assert not decided.reload
    assert decided.commands == (
        f"set server {name}/s2 addr 10.0.0.7 port 8080",
        f"set server {name}/s2 weight 1",
        f"set server {name}/s2 state ready",
    )
    removed = _render(_proxy("a", backends=(other,)), layout=added)
    assert plan(added, removed, MAP).commands == (f"set server {name}/s1 state maint",)
    assert removed.layout()[name][:2] == (None, "o")  # "o" kept its slot


def test_a_replaced_member_is_made_before_the_old_one_breaks() -> None:
    """A proxy's only member replaced by another: the newcomer takes a spare slot and
    comes up before the old slot goes to maintenance, so no request finds no server."""
    before = _render(_proxy("a"))
    other = Backend(id="o", address="10.0.0.7", port=8080)
    replaced = _render(_proxy("a", backends=(other,)), layout=before)
    name = next(iter(replaced.slots))
    assert replaced.layout()[name][:2] == (None, "o")
    assert plan(before, replaced, MAP).commands == (
        f"set server {name}/s2 addr 10.0.0.7 port 8080",
        f"set server {name}/s2 weight 1",
        f"set server {name}/s2 state ready",
        f"set server {name}/s1 state maint",
    )


def test_portway_verdicts_are_maint_and_ready_without_reload() -> None:
    snapshot = Snapshot(version=1, routes=RouteTable.build([_proxy("a")]))
    before = render(snapshot, OPTIONS)
    down = render(snapshot, OPTIONS, before.layout(), frozenset({("a", "b")}))
    name = next(iter(down.slots))
    assert "server s1 127.0.0.1:9001 weight 1 disabled" in down.files["haproxy.cfg"]
    decided = plan(before, down, MAP)
    assert not decided.reload
    assert decided.commands == (f"set server {name}/s1 state maint",)
    up = render(snapshot, OPTIONS, down.layout())
    assert plan(down, up, MAP).commands == (f"set server {name}/s1 state ready",)
    # A member that moves while down stays out of service: no "ready" for it.
    moved = dataclasses.replace(GOOD, port=9002)
    snapshot2 = Snapshot(version=2, routes=RouteTable.build([_proxy("a", backends=(moved,))]))
    still = render(snapshot2, OPTIONS, down.layout(), frozenset({("a", "b")}))
    assert plan(down, still, MAP).commands == (
        f"set server {name}/s1 addr 127.0.0.1 port 9002",
        f"set server {name}/s1 weight 1",
    )


def test_hostname_changes_are_map_commands() -> None:
    before = _render(_proxy("a"))
    moved = _render(_proxy("a", hostname="new.example.org"), layout=before)
    name = next(iter(moved.slots))
    decided = plan(before, moved, MAP)
    assert not decided.reload
    assert decided.commands == (
        f"del map {MAP} ok.example.org",
        f"add map {MAP} new.example.org {name}",
    )


@pytest.mark.parametrize(
    "change",
    [
        {"id": "new-proxy"},
        {"path_prefix": "/p"},
        {"algorithm": "least_conn"},
        {"backends": (dataclasses.replace(GOOD, backup=True),)},
        {"backends": (dataclasses.replace(GOOD, address="backend.internal"),)},
        {"backends": tuple(dataclasses.replace(GOOD, id=f"m{i}") for i in range(9))},
        {"tls": TlsSettings(hsts=True)},
        {"health_check": HealthCheck()},
    ],
    ids=lambda c: next(iter(c)),
)
def test_what_the_runtime_api_cannot_change_is_a_reload(change: dict[str, object]) -> None:
    options = dataclasses.replace(OPTIONS, https=(("127.0.0.1", 8443),), default_certificate=True)
    before_proxy = _proxy("a")
    snapshot = Snapshot(version=1, routes=RouteTable.build([before_proxy]))
    before = render(snapshot, options)
    after_proxy = dataclasses.replace(before_proxy, **change)  # type: ignore[arg-type]
    after = render(
        Snapshot(version=2, routes=RouteTable.build([after_proxy])), options, before.layout()
    )
    decided = plan(before, after, MAP)
    assert decided.reload and decided.reason and not decided.commands


def test_a_deleted_proxy_is_a_map_entry_less_and_no_reload() -> None:
    before = _render(_proxy("a"), _proxy("b", hostname="b.example.org"))
    after = _render(_proxy("a"), layout=before)
    gone = next(name for name in before.slots if name not in after.slots)
    decided = plan(before, after, MAP)
    assert not decided.reload
    assert decided.commands == (f"del map {MAP} b.example.org", f"set server {gone}/s1 state maint")
    # Deleting a proxy routed by path prefix changes the frontend's rules: a reload.
    prefixed = _render(_proxy("a"), _proxy("p", path_prefix="/p"))
    assert plan(prefixed, _render(_proxy("a"), layout=prefixed), MAP).reload


def test_an_unchanged_snapshot_needs_nothing() -> None:
    before = _render(_proxy("a"), _proxy("b", hostname="*.example.org"))
    again = _render(_proxy("a"), _proxy("b", hostname="*.example.org"), layout=before)
    assert plan(before, again, MAP) == plan(before, before, MAP)
    assert not plan(before, again, MAP).reload and plan(before, again, MAP).commands == ()
    assert plan(None, before, MAP).reload


GOLDEN_BACKEND = """backend pw_ca978112ca1bbdcafac2
    # proxy a
    # project p
    balance roundrobin
    timeout connect 5000ms
    timeout server 60000ms
    timeout tunnel 3600000ms
    http-request redirect code 301 location https://%[var(txn.host)]:8443%[pathq] unless { ssl_fc }
    http-response set-header Strict-Transport-Security 'max-age=31536000' if { ssl_fc } !{ res.hdr(strict-transport-security) -m found }
    timeout check 2000ms
    option httpchk
    http-check send meth 'GET' uri '/healthz' ver HTTP/1.1 hdr Host 'app.example.org'
    http-check expect rstatus '^(200)$'
    default-server check inter 2000ms rise 2 fall 5 observe layer4 error-limit 3 on-error mark-down
    cookie PORTWAY_SRV insert indirect nocache httponly
    server s1 10.0.0.1:80 weight 3 cookie s1
    server s2 10.0.0.2:80 weight 1 backup cookie s2
    server s3 127.0.0.1:1 weight 1 disabled cookie s3
    server s4 127.0.0.1:1 weight 1 disabled cookie s4
"""  # noqa: E501 (HAProxy lines as rendered)


def test_a_proxy_backend_is_rendered_as_expected() -> None:
    """Golden text: weights, a backup, the proxy's HTTP check with the OpenStack HA
    guide's rise/fall, cookie stickiness, redirect and HSTS, and two spare slots."""
    options = dataclasses.replace(
        OPTIONS, https=(("127.0.0.1", 8443),), default_certificate=True, spare_slots=2
    )
    proxy = _proxy(
        "a",
        hostname="app.example.org",
        algorithm="weighted_round_robin",
        backends=(
            Backend(id="x", address="10.0.0.1", port=80, weight=3),
            Backend(id="y", address="10.0.0.2", port=80, backup=True),
        ),
        health_check=HealthCheck(
            path="/healthz", interval=2.0, rise=2, fall=5, expected_codes="200"
        ),
        session_persistence=SessionPersistence(type="cookie"),
        tls=TlsSettings(redirect_http=True, hsts=True),
    )
    text = render(Snapshot(version=1, routes=RouteTable.build([proxy])), options).files[
        "haproxy.cfg"
    ]
    assert text[text.index("backend pw_") :] == GOLDEN_BACKEND


@pytest.mark.parametrize("protocol", ["http", "https", "tcp", "tls-passthrough"])
def test_a_port_outside_the_nodes_policy_is_refused_not_served_on_the_shared_ones(
    protocol: str,
) -> None:
    config = _render(
        _proxy("lp", listen_port=8772, protocol=protocol), _proxy("fine", hostname="f.example.org")
    )
    assert [(p.proxy_id, p.field, p.served) for p in config.problems] == [
        ("lp", "listen_port", False)
    ]
    assert len(config.sections) == 1  # "fine" only
    assert "8772" not in config.files["haproxy.cfg"]


PORTS = dataclasses.replace(
    OPTIONS,
    default_certificate=True,
    listen_policy=ListenPolicy((PortRange("127.0.0.1", 8000, 8999),), frozenset({8080})),
)


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        ("http", "    bind 127.0.0.1:8772\n    acl portway_trusted"),
        ("https", "    bind 127.0.0.1:8772 ssl crt "),
        ("tcp", "    bind 127.0.0.1:8772\n    timeout client"),
        ("tls-passthrough", "tcp-request content accept if { req_ssl_hello_type 1 }"),
    ],
)
def test_a_port_within_the_policy_is_a_frontend_of_its_own(protocol: str, expected: str) -> None:
    proxy = _proxy("lp", listen_port=8772, protocol=protocol)
    config = render(Snapshot(version=1, routes=RouteTable.build([proxy])), PORTS)
    assert config.problems == ()
    port_frontend = config.front[config.front.index("frontend portway_port_8772") :]
    assert expected in port_frontend
    hygiene = "http-request set-header X-Forwarded-Proto" in port_frontend
    assert hygiene == (protocol in ("http", "https"))
    assert ("    mode tcp\n" in port_frontend) == (not hygiene)
    # One of Portway's own ports is never bound, whatever the ranges say.
    own = dataclasses.replace(proxy, listen_port=8080)
    mine = render(Snapshot(version=1, routes=RouteTable.build([own])), PORTS)
    assert [p.field for p in mine.problems] == ["listen_port"]


def test_a_tcp_proxys_backend_relays_with_its_limits_and_proxy_protocol() -> None:
    proxy = _proxy(
        "t",
        listen_port=8500,
        protocol="tcp",
        algorithm="source_ip",
        stream=StreamSettings(proxy_protocol=True, max_connections=7),
        timeouts=Timeouts(connect=2.0, idle=30.0),
    )
    config = render(Snapshot(version=1, routes=RouteTable.build([proxy])), PORTS)
    (section,) = config.sections.values()
    for line in (
        "    mode tcp\n",
        "    balance source\n",
        "    timeout connect 2000ms\n",
        "    timeout server 30000ms\n",
        "    tcp-request content reject if { be_conn gt 7 }\n",
        " send-proxy-v2\n",
    ):
        assert line in section
    assert "http-request" not in section
    assert "    timeout client 30000ms\n" in config.front


def test_an_https_port_sends_hsts_without_a_shared_https_listener() -> None:
    proxy = _proxy("s", listen_port=8772, protocol="https", tls=TlsSettings(hsts=True))
    config = render(Snapshot(version=1, routes=RouteTable.build([proxy])), PORTS)
    assert PORTS.https == ()
    (section,) = config.sections.values()
    assert "Strict-Transport-Security" in section
