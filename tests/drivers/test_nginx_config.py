"""The nginx renderer as a pure function: tenant strings never change the structure of
the configuration, unexpressible features are reported, and the files are what the
spec's layout says (golden texts)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path

import pytest

from portway.drivers import file_tree
from portway.drivers.file_tree import FileTree
from portway.drivers.nginx_config import AVAILABLE, ENABLED, render
from portway.drivers.nginx_options import NginxOptions
from portway.drivers.nginx_syntax import quote
from portway.errors import ConfigError
from portway.model import Backend, HealthCheck, Proxy, Rewrite, SessionPersistence, TlsSettings
from portway.model.listen_policy import ListenPolicy, PortRange
from portway.router import RouteTable, Snapshot
from tests.drivers.conftest import NGINX, free_port

PAYLOADS = (
    '"; } server { listen 9; location / { return 200 "pwned"; } } #',
    "x;\n}\nserver { return 200 pwned; }",
    "a$host}{",
    "a'b\"c\\",
)
GOOD = Backend(id="b", address="127.0.0.1", port=9001)


def _proxy(pid: str, **kw: object) -> Proxy:
    fields: dict[str, object] = {"hostname": "ok.example.org", "backends": (GOOD,)}
    fields.update(kw)
    return Proxy(id=pid, project="p", **fields)  # type: ignore[arg-type]


def _render(*proxies: Proxy, options: NginxOptions | None = None) -> FileTree:
    snapshot = Snapshot(version=1, routes=RouteTable.build(proxies))
    return render(snapshot, options or NginxOptions(control_socket="/tmp/portway-ctl.sock"))


def _malicious() -> list[Proxy]:
    """Proxies built directly, past the API's validation, each with a payload in one
    tenant-chosen field that reaches the configuration."""
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
        ]
    return out


def _structure(tree: FileTree) -> list[str]:
    """Every directive name and block brace, in order, outside quoted strings."""
    text = "\n".join(tree.files[p] for p in sorted(tree.files))
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '"Q"', text)
    text = re.sub(r"#[^\n]*", "", text)
    return re.findall(r"[{};]|^\s*[a-z_]+", text, flags=re.M)


def test_tenant_strings_cannot_inject_nginx_syntax() -> None:
    clean = _render(_proxy("good"))
    tree = _render(_proxy("good"), *_malicious())
    refused = {p.proxy_id for p in tree.problems if not p.served}
    assert refused == {p.id for p in _malicious()}
    fields = {p.proxy_id[:4]: p.field for p in tree.problems}
    assert fields == {"host": "hostname", "path": "path_prefix", "addr": "backends[0].address"} | {
        "hash": "hash_key"
    }
    everything = "".join(tree.files.values())
    for payload in PAYLOADS:
        assert payload not in everything
    assert "pwned" not in everything
    # The tree has exactly the structure of the one without the malicious proxies.
    assert _structure(tree) == _structure(clean)


def test_quoting_is_the_second_wall() -> None:
    for payload in PAYLOADS[:1] + PAYLOADS[2:]:
        token = quote(payload)
        assert token.startswith('"') and token.endswith('"')
        inner = token[1:-1]
        assert re.fullmatch(r'(?:[^"\\]|\\["\\])*', inner), token
    with pytest.raises(ConfigError):
        quote("a\nb")
    with pytest.raises(ConfigError):
        quote("caf\u00e9\r")


def test_quoted_prefix_reads_back_exactly_in_real_nginx(tmp_path: Path) -> None:
    """nginx itself reads ``quote(s)`` as ``s``: a location for a string full of
    config syntax matches exactly that (percent-encoded) path, and nothing else."""
    weird = "/a;b}{c\"d\\e$f'g #h"
    port = free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "pid nginx.pid; error_log stderr; events {} http { access_log off;"
        f" server {{ listen 127.0.0.1:{port};"
        f' location = {quote(weird)} {{ return 200 "hit"; }}'
        ' location / { return 404 "miss"; } } }'
    )
    run = subprocess.run([NGINX, "-t", "-p", f"{tmp_path}/", "-c", str(conf)], capture_output=True)
    assert run.returncode == 0, run.stderr
    from urllib.parse import quote as urlquote

    server = subprocess.Popen([NGINX, "-p", f"{tmp_path}/", "-c", str(conf), "-g", "daemon off;"])
    try:
        import http.client
        import time

        def get(path: str) -> tuple[int, bytes]:
            for _ in range(100):
                try:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    c.request("GET", path, headers={"Host": "x"})
                    r = c.getresponse()
                    return r.status, r.read()
                except ConnectionRefusedError:
                    time.sleep(0.05)
            raise AssertionError("nginx did not start")

        assert get(urlquote(weird, safe="/")) == (200, b"hit")
        assert get(urlquote(weird[:-1], safe="/"))[0] == 404
    finally:
        server.terminate()
        server.wait(5)


def test_file_per_proxy_linked_only_while_it_has_backends() -> None:
    tree = _render(
        _proxy("with", hostname="a.example.org"),
        _proxy("none", hostname="b.example.org", backends=()),
        _proxy(
            "drained",
            hostname="c.example.org",
            backends=(Backend(id="d", address="::1", port=1, weight=0),),
        ),
    )
    available = sorted(p for p in tree.files if p.startswith(AVAILABLE))
    assert [p.split("/")[1].split(".")[0] for p in available] == ["a", "b", "c"]
    name = available[0].split("/", 1)[1]
    assert tree.links == {f"{ENABLED}/{name}": f"../{AVAILABLE}/{name}"}
    servers = [t for p, t in tree.files.items() if p.startswith("servers/")]
    assert sum("return 503;" in t for t in servers) == 2  # no backend: Portway's 503 page


def test_what_nginx_oss_lacks_is_reported_not_faked() -> None:
    tree = _render(
        _proxy(
            "sticky",
            session_persistence=SessionPersistence(type="cookie"),
            health_check=HealthCheck(),
        )
    )
    served = {(p.field, p.served) for p in tree.problems}
    assert served == {("session_persistence", True), ("health_check", True)}
    everything = "".join(tree.files.values())
    assert not re.search(r"^\s*(sticky|health_check|check)\b", everything, flags=re.M)


def test_unexpressible_hash_key_is_refused() -> None:
    tree = _render(_proxy("h", algorithm="consistent_hash", hash_key="cookie:my-session"))
    assert [(p.field, p.served) for p in tree.problems] == [("hash_key", False)]
    assert not any(p.startswith((AVAILABLE, "servers/")) for p in tree.files)


def test_upstream_and_server_files_golden() -> None:
    proxies = (
        _proxy(
            "w",
            hostname="app.example.org",
            path_prefix="/tool",
            algorithm="weighted_round_robin",
            backends=(
                Backend(id="1", address="127.0.0.1", port=8001, weight=5),
                Backend(id="2", address="::1", port=8002, backup=True),
                Backend(id="3", address="127.0.0.3", port=8003, weight=0),
            ),
        ),
    )
    tree = _render(*proxies)
    upstream = next(t for p, t in tree.files.items() if p.startswith(AVAILABLE))
    assert upstream == (
        "# proxy w of project p\n"
        "upstream portway_50e721e49c013f00c62c {\n"
        "    zone portway_upstreams;\n"
        '    server "127.0.0.1:8001" weight=5 max_fails=3 fail_timeout=10s;\n'
        '    server "[::1]:8002" max_fails=3 fail_timeout=10s backup;\n'
        '    server "127.0.0.3:8003" down;\n'
        "    keepalive 32;\n"
        "}\n"
    )
    server = next(t for p, t in tree.files.items() if p.startswith("servers/"))
    body = (
        "        # proxy w\n"
        "        proxy_pass http://portway_50e721e49c013f00c62c;\n"
        "        client_max_body_size 0;\n"
        "        proxy_connect_timeout 5000ms;\n"
        "        proxy_read_timeout 60000ms;\n"
        "        proxy_send_timeout 60000ms;\n"
        "        include portway/proxy.conf;\n"
    )
    assert server == (
        "server {\n"
        "    listen 127.0.0.1:8080;\n"
        '    server_name "app.example.org";\n'
        "    include portway/errors.conf;\n"
        f'    location = "/tool" {{\n{body}    }}\n'
        f'    location ^~ "/tool/" {{\n{body}    }}\n'
        "    location / {\n        return 404;\n    }\n"
        "}\n"
    )


def test_diff_touches_only_what_changed() -> None:
    a = _render(_proxy("one", hostname="a.example.org"), _proxy("two", hostname="b.example.org"))
    b = _render(_proxy("one", hostname="a.example.org"))
    change = file_tree.diff(a, b)
    assert not change.write and not change.link
    assert len(change.remove) == 3  # two's file, its link and its server
    assert not file_tree.diff(b, b)


def _location(tree: FileTree) -> str:
    return next(t for p, t in tree.files.items() if p.startswith("servers/"))


def test_tls_backends_are_proxy_pass_https_without_sni_for_ip_addresses() -> None:
    backends = (Backend(id="1", address="10.0.0.1", port=443, tls=True),)
    text = _location(_render(_proxy("t", backends=backends)))
    assert "proxy_pass https://portway_" in text
    assert "        proxy_ssl_protocols TLSv1.2 TLSv1.3;\n" in text
    assert "proxy_ssl_server_name" not in text and "proxy_ssl_verify" not in text


def test_a_tls_backend_named_by_hostname_gets_it_as_sni() -> None:
    backends = (Backend(id="1", address="api.svc.example", port=443, tls=True),)
    text = _location(_render(_proxy("t", backends=backends)))
    assert '        proxy_ssl_server_name on;\n        proxy_ssl_name "api.svc.example";\n' in text


def test_tls_backends_with_several_hostnames_are_served_without_sni() -> None:
    backends = tuple(
        Backend(id=str(i), address=f"b{i}.svc.example", port=443, tls=True) for i in range(2)
    )
    tree = _render(_proxy("t", backends=backends))
    assert "proxy_ssl_server_name" not in _location(tree)
    assert [(p.field, p.served) for p in tree.problems] == [("backends.tls", True)]


def test_a_proxy_mixing_tls_and_plain_backends_is_refused() -> None:
    backends = (
        Backend(id="1", address="10.0.0.1", port=443, tls=True),
        Backend(id="2", address="10.0.0.2", port=80),
    )
    tree = _render(_proxy("mixed", backends=backends), _proxy("fine", hostname="f.example.org"))
    assert [(p.proxy_id, p.field, p.served) for p in tree.problems] == [
        ("mixed", "backends.tls", False)
    ]
    assert len([path for path in tree.files if path.startswith(AVAILABLE)]) == 1  # "fine" only


def test_a_proxy_with_a_path_rewrite_is_refused_not_forwarded_with_the_clients_path() -> None:
    rewritten = _proxy("rw", path_prefix="/health", rewrite=Rewrite(backend_prefix="/cfg/health"))
    tree = _render(rewritten, _proxy("fine", hostname="f.example.org"))
    assert [(p.proxy_id, p.field, p.served) for p in tree.problems] == [
        ("rw", "rewrite.backend_prefix", False)
    ]
    assert len([path for path in tree.files if path.startswith(AVAILABLE)]) == 1  # "fine" only


def test_members_portway_declares_down_are_rendered_down() -> None:
    other = Backend(id="o", address="127.0.0.1", port=9002)
    snapshot = Snapshot(version=1, routes=RouteTable.build([_proxy("a", backends=(GOOD, other))]))
    options = NginxOptions(control_socket="/tmp/portway-ctl.sock")
    tree = render(snapshot, options, frozenset({("a", "b")}))
    upstream = next(t for p, t in tree.files.items() if p.startswith(f"{AVAILABLE}/"))
    assert '"127.0.0.1:9001" down;' in upstream or "127.0.0.1:9001 down;" in upstream
    assert "9002 down" not in upstream
    every = render(snapshot, options, frozenset({("a", "b"), ("a", "o")}))
    assert not every.links  # none left to serve: unlinked, and the location answers 503
    assert any("return 503;" in t for t in every.files.values())


def test_a_tls_backend_addressed_by_ip_is_left_out_when_backends_are_verified() -> None:
    options = NginxOptions(control_socket="/tmp/portway-ctl.sock", upstream_ca_file="/ca.pem")
    by_ip = _proxy("ip", backends=(dataclasses.replace(GOOD, tls=True),))
    named = _proxy(
        "named",
        hostname="n.example.org",
        backends=(Backend(id="n", address="backend.example.org", port=443, tls=True),),
    )
    tree = _render(by_ip, named, options=options)
    assert [(p.proxy_id, p.field, p.served) for p in tree.problems] == [
        ("ip", "backends.tls", False)
    ]
    server = "".join(t for p, t in tree.files.items() if "servers/" in p)
    assert "proxy_ssl_verify on;" in server
    assert 'proxy_ssl_trusted_certificate "/ca.pem";' in server or "/ca.pem;" in server
    assert "proxy_ssl_name" in server


@pytest.mark.parametrize("protocol", ["http", "https", "tcp", "tls-passthrough"])
def test_a_port_outside_the_nodes_policy_is_refused_not_served_on_the_shared_ones(
    protocol: str,
) -> None:
    on_port = _proxy("lp", listen_port=8772, protocol=protocol)
    tree = _render(on_port, _proxy("fine", hostname="f.example.org"))
    assert [(p.proxy_id, p.field, p.served) for p in tree.problems] == [
        ("lp", "listen_port", False)
    ]
    assert len([path for path in tree.files if path.startswith(AVAILABLE)]) == 1  # "fine" only
    assert "8772" not in "".join(tree.files.values())


PORTS = NginxOptions(
    control_socket="/tmp/portway-ctl.sock",
    default_certificate=("/d.pem", "/d.key"),
    listen_policy=ListenPolicy((PortRange("127.0.0.1", 8000, 8999),), frozenset({8080})),
)


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        ("http", "    listen 127.0.0.1:8772;\n"),
        ("https", "    listen 127.0.0.1:8772 ssl;\n"),
        ("tcp", "stream {\n"),
        ("tls-passthrough", "        ssl_preread on;\n"),
    ],
)
def test_a_port_within_the_policy_is_rendered(protocol: str, expected: str) -> None:
    tree = _render(_proxy("lp", listen_port=8772, protocol=protocol), options=PORTS)
    assert tree.problems == ()
    assert expected in "".join(tree.files.values())
    main = tree.files["nginx.conf"]
    assert ("load_module" in main) == (protocol in ("tcp", "tls-passthrough"))
    own = _render(_proxy("lp", listen_port=8080, protocol=protocol), options=PORTS)
    assert [p.field for p in own.problems] == ["listen_port"]  # Portway's own: never


def test_without_the_stream_module_relayed_ports_are_refused_clearly() -> None:
    options = dataclasses.replace(PORTS, stream_module=None)
    tree = _render(_proxy("lp", listen_port=8772, protocol="tcp"), options=options)
    ((_, field, message, served),) = (
        (p.proxy_id, p.field, p.message, p.served) for p in tree.problems
    )
    assert (field, served) == ("protocol", False)
    assert "libnginx-mod-stream" in message
    assert "stream {" not in tree.files["nginx.conf"]


def test_an_https_port_sends_hsts_without_a_shared_https_listener() -> None:
    proxy = _proxy("s", listen_port=8772, protocol="https", tls=TlsSettings(hsts=True))
    tree = _render(proxy, options=PORTS)
    assert PORTS.https == ()
    server = "".join(t for path, t in tree.files.items() if path.startswith("servers/"))
    assert "add_header Strict-Transport-Security" in server
