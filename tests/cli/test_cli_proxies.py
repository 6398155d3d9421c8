"""portway proxy and portway backend: requests sent and output shown."""

from __future__ import annotations

import json

PROXY = {
    "id": "px1",
    "project": "alpha",
    "hostname": "wiki.alpha.example.org",
    "path_prefix": "/",
    "backend_port": 8080,
    "algorithm": "round_robin",
    "tls": {"certificate": None, "redirect_http": True},
    "backends": [
        {"id": "b1", "address": "10.0.0.5", "port": 8080, "weight": 1, "backup": False},
        {"id": "b2", "address": "fd00::7", "port": 8081, "weight": 2, "backup": True},
    ],
}
BASE = "/v1/alpha/proxies"


def test_proxy_create_sends_all_given_fields(api, cli):
    api.reply("POST", BASE, 201, {"proxy": PROXY})
    result = cli(
        "proxy", "create", "wiki.alpha.example.org", "-p", "alpha",
        "--path-prefix", "/w", "--backend-port", "8080", "--algorithm", "least_conn",
        "--backend", "10.0.0.5", "--backend", "10.0.0.6:9000", "--backend", "[fd00::7]:81",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert api.last.body == {
        "proxy": {
            "hostname": "wiki.alpha.example.org",
            "path_prefix": "/w",
            "backend_port": 8080,
            "algorithm": "least_conn",
            "backends": [
                {"address": "10.0.0.5"},
                {"address": "10.0.0.6", "port": 9000},
                {"address": "fd00::7", "port": 81},
            ],
        }
    }


def test_proxy_create_minimal_sends_only_hostname(api, cli):
    api.reply("POST", BASE, 201, {"proxy": PROXY})
    cli("proxy", "create", "wiki.alpha.example.org", "-p", "alpha")
    assert api.last.body == {"proxy": {"hostname": "wiki.alpha.example.org"}}


def test_proxy_create_forwarded_for_sets_the_privacy_option(api, cli):
    api.reply("POST", BASE, 201, {"proxy": PROXY})
    result = cli("proxy", "create", "h.example.org", "-p", "alpha", "--forwarded-for", "off")
    assert result.exit_code == 0, result.stderr
    assert api.last.body == {
        "proxy": {"hostname": "h.example.org", "privacy": {"forwarded_for": "off"}}
    }


def test_proxy_create_rejects_unknown_algorithm_before_calling_api(api, cli):
    result = cli("proxy", "create", "h.example.org", "-p", "alpha", "--algorithm", "fastest")
    assert result.exit_code == 2
    assert api.requests == []
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("portway: Invalid value for '--algorithm'")


def test_proxy_list_table_summarizes_backends(api, cli):
    api.reply("GET", BASE, 200, {"proxies": [PROXY]})
    result = cli("proxy", "list", "-p", "alpha")
    assert result.exit_code == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == [
        "ID",
        "HOSTNAME",
        "PATH_PREFIX",
        "LISTENER",
        "BACKEND_PORT",
        "ALGORITHM",
        "BACKENDS",
    ]
    assert row.endswith("10.0.0.5:8080 [fd00::7]:8081")
    assert row.split()[3] == "shared"


def test_proxy_create_on_a_port_of_its_own(api, cli):
    """The issue's example: the EC2 API's HTTPS port in front of one backend."""
    api.reply("POST", BASE, 201, {"proxy": {**PROXY, "listen_port": 8772, "protocol": "https"}})
    result = cli(
        "proxy", "create", "api.example.org", "-p", "alpha",
        "--listen-port", "8772", "--protocol", "https", "--backend", "10.0.0.5:8774",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert api.last.body == {
        "proxy": {
            "hostname": "api.example.org",
            "listen_port": 8772,
            "protocol": "https",
            "backends": [{"address": "10.0.0.5", "port": 8774}],
        }
    }


def test_proxy_list_shows_the_port_and_protocol(api, cli):
    on_port = {**PROXY, "listen_port": 8772, "protocol": "https"}
    api.reply("GET", BASE, 200, {"proxies": [on_port]})
    result = cli("proxy", "list", "-p", "alpha")
    assert result.stdout.splitlines()[1].split()[3] == "8772/https"


def test_proxy_create_rejects_an_unknown_protocol_before_calling_api(api, cli):
    result = cli("proxy", "create", "h.example.org", "-p", "alpha", "--protocol", "udp")
    assert result.exit_code == 2 and api.requests == []


def test_proxy_list_json_keeps_full_objects(api, cli):
    api.reply("GET", BASE, 200, {"proxies": [PROXY]})
    result = cli("proxy", "list", "-p", "alpha", "-f", "json")
    assert json.loads(result.stdout) == [PROXY]


def test_proxy_show_by_hostname_prints_record_and_backend_table(api, cli):
    api.reply("GET", f"{BASE}/wiki.alpha.example.org", 200, {"proxy": PROXY})
    result = cli("proxy", "show", "wiki.alpha.example.org", "-p", "alpha")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "hostname      wiki.alpha.example.org" in out
    assert "tls           certificate=-, redirect_http=yes" in out
    assert "backends:\nID  ADDRESS   PORT  WEIGHT  BACKUP" in out
    assert "b2  fd00::7   8081  2       yes" in out


def test_proxy_id_is_quoted_as_one_path_segment(api, cli):
    cli("proxy", "show", "a/b?c", "-p", "alpha")
    assert api.last.path == f"{BASE}/a%2Fb%3Fc"


def test_proxy_delete(api, cli):
    api.reply("DELETE", f"{BASE}/px1", 204)
    result = cli("proxy", "delete", "px1", "-p", "alpha")
    assert result.exit_code == 0, result.stderr
    assert api.last.method == "DELETE"
    assert result.stdout == "deleted proxy px1\n"


def test_proxy_delete_json_prints_nothing(api, cli):
    api.reply("DELETE", f"{BASE}/px1", 204)
    result = cli("proxy", "delete", "px1", "-p", "alpha", "-f", "json")
    assert result.exit_code == 0
    assert result.stdout == ""


def test_backend_add_sends_weight_and_backup(api, cli):
    path = f"{BASE}/wiki.alpha.example.org/backends"
    api.reply("POST", path, 201, {"backend": PROXY["backends"][0]})
    result = cli(
        "backend", "add", "wiki.alpha.example.org", "10.0.0.9:8000", "--weight", "3", "--backup",
        "-p", "alpha",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert api.last.path == path
    assert api.last.body == {
        "backend": {"address": "10.0.0.9", "port": 8000, "weight": 3, "backup": True}
    }


def test_backend_add_tls_sends_tls(api, cli):
    path = f"{BASE}/px1/backends"
    api.reply("POST", path, 201, {"backend": PROXY["backends"][0]})
    result = cli("backend", "add", "px1", "10.0.0.9:443", "--tls", "-p", "alpha")
    assert result.exit_code == 0, result.stderr
    assert api.last.body == {"backend": {"address": "10.0.0.9", "port": 443, "tls": True}}


def test_backend_add_without_port_leaves_it_to_the_proxy(api, cli):
    path = f"{BASE}/px1/backends"
    api.reply("POST", path, 201, {"backend": PROXY["backends"][0]})
    cli("backend", "add", "px1", "10.0.0.9", "-p", "alpha")
    assert api.last.body == {"backend": {"address": "10.0.0.9"}}


def test_backend_add_rejects_bad_port(api, cli):
    result = cli("backend", "add", "px1", "10.0.0.9:99999", "-p", "alpha")
    assert result.exit_code == 2
    assert "port must be a number from 1 to 65535" in result.stderr
    assert api.requests == []


def test_backend_list(api, cli):
    api.reply("GET", f"{BASE}/px1/backends", 200, {"backends": PROXY["backends"]})
    result = cli("backend", "list", "px1", "-p", "alpha")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].split() == ["ID", "ADDRESS", "PORT", "WEIGHT", "BACKUP"]


def test_backend_remove_by_address_looks_up_the_id(api, cli):
    api.reply("GET", f"{BASE}/px1/backends", 200, {"backends": PROXY["backends"]})
    api.reply("DELETE", f"{BASE}/px1/backends/b2", 204)
    result = cli("backend", "remove", "px1", "[fd00::7]:8081", "-p", "alpha")
    assert result.exit_code == 0, result.stderr
    assert [(r.method, r.path) for r in api.requests] == [
        ("GET", f"{BASE}/px1/backends"),
        ("DELETE", f"{BASE}/px1/backends/b2"),
    ]


def test_backend_remove_by_id(api, cli):
    api.reply("GET", f"{BASE}/px1/backends", 200, {"backends": PROXY["backends"]})
    api.reply("DELETE", f"{BASE}/px1/backends/b1", 204)
    result = cli("backend", "remove", "px1", "b1", "-p", "alpha")
    assert result.exit_code == 0, result.stderr
    assert api.last.path == f"{BASE}/px1/backends/b1"


def test_backend_remove_unknown_backend_is_one_line_404(api, cli):
    api.reply("GET", f"{BASE}/px1/backends", 200, {"backends": PROXY["backends"]})
    result = cli("backend", "remove", "px1", "10.9.9.9:1", "-p", "alpha")
    assert result.exit_code == 1
    assert result.stderr == "portway: 404 Not Found: proxy px1 has no backend 10.9.9.9:1\n"
    assert [r.method for r in api.requests] == ["GET"]


def test_project_from_group_option_and_environment(api, cli):
    api.reply("GET", "/v1/beta/proxies", 200, {"proxies": []})
    assert cli("-p", "beta", "proxy", "list").exit_code == 0
    assert api.last.path == "/v1/beta/proxies"
    assert cli("proxy", "list", env={"PORTWAY_PROJECT": "beta"}).exit_code == 0
    assert api.last.path == "/v1/beta/proxies"


def test_command_option_beats_group_option(api, cli):
    api.reply("GET", "/v1/gamma/proxies", 200, {"proxies": []})
    result = cli("-p", "beta", "proxy", "list", "-p", "gamma")
    assert result.exit_code == 0
    assert api.last.path == "/v1/gamma/proxies"


def test_format_from_environment(api, cli):
    api.reply("GET", f"{BASE}/px1", 200, {"proxy": PROXY})
    result = cli("proxy", "show", "px1", "-p", "alpha", env={"PORTWAY_FORMAT": "json"})
    assert json.loads(result.stdout) == PROXY


def test_proxy_purge_posts_urls_prefixes_and_keys(api, cli):
    api.reply("POST", BASE + "/wiki.alpha.example.org/purge", 200, {"purge": {"purged": 4}})
    result = cli(
        "proxy", "purge", "wiki.alpha.example.org", "-p", "alpha",
        "--uri", "/a?x=1", "--prefix", "/static/", "--key", "k1", "--key", "k2",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "purged 4 entries\n"
    assert api.last.body == {
        "purge": {"urls": ["/a?x=1"], "prefixes": ["/static/"], "keys": ["k1", "k2"]}
    }
