"""A real ``portway serve`` with ``--dns-*`` flags against a real BIND: the records follow
the native API and the dynamicproxy API, a foreign record is a 409, a stopped BIND a 503
with nothing committed, and ``portway dns check`` and the periodic check repair a record
that an operator deleted."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from portway.dns.plan import marker
from tests.dns.bind import KEY, Bind
from tests.integration.harness import VENV_BIN, Backend, Portway, start_backend, wait_routed
from tests.integration.test_cli import cli

OWNER = "serve-test"
A, AAAA = "192.0.2.80", "2001:db8::80"


def dns_flags(bind: Bind, *, interval: float = 0) -> list[str]:
    return [
        "--dns-server", f"127.0.0.1:{bind.port}",
        "--dns-zone", "cloud.test",
        "--dns-zone", "apps.test",
        "--dns-tsig-name", KEY,
        "--dns-tsig-secret-file", str(bind.key_file),
        "--dns-address", A,
        "--dns-address", AAAA,
        "--dns-ttl", "120",
        "--dns-owner", OWNER,
        "--dns-timeout", "2",
        "--dns-check-interval", str(interval),
    ]  # fmt: skip


@pytest.fixture
def backend() -> Iterator[Backend]:
    started = start_backend("b0")
    yield started
    started.stop()


@pytest.fixture
def serve(own_bind: Bind, tmp_path: Path) -> Iterator[Portway]:
    pw = Portway(tmp_path / "data", extra=dns_flags(own_bind), metrics=False)
    pw.start()
    yield pw
    pw.stop()


def member(pw: Portway, project: str) -> str:
    assert pw.api("POST", "/v1/projects", json={"project": {"name": project}}).status_code == 201
    made = pw.api("POST", f"/v1/{project}/tokens", json={"token": {"role": "member"}})
    secret: str = made.json()["token"]["secret"]
    return secret


def records(bind: Bind, name: str) -> set[str]:
    return bind.names().get(name, set())


def ours(bind: Bind, name: str) -> bool:
    return records(bind, name) == {f"A {A}", f"AAAA {AAAA}", f"TXT {marker(OWNER)}"}


def create(pw: Portway, token: str, hostname: str, port: int) -> requests.Response:
    body = {"proxy": {"hostname": hostname, "backends": [{"address": "127.0.0.1", "port": port}]}}
    url = f"{pw.api_url}/v1/alpha/proxies"
    return requests.post(url, json=body, headers={"X-Auth-Token": token}, timeout=15)


def hostnames(pw: Portway) -> set[str]:
    return {p["hostname"] for p in pw.api("GET", "/v1/alpha/proxies").json()["proxies"]}


def test_serve_keeps_the_records_of_both_apis(
    serve: Portway, own_bind: Bind, backend: Backend
) -> None:
    bind, token = own_bind, member(serve, "alpha")
    made = create(serve, token, "web.cloud.test", backend.port)
    assert made.status_code == 201, made.text
    assert bind.dig("web.cloud.test", "A") == {A}
    assert bind.dig("web.cloud.test", "TXT") == {marker(OWNER)}
    wait_routed(serve, "web.cloud.test")

    # Renamed through the dynamicproxy API, as wmcs-webproxy sends it (no Content-Type).
    mapping = f"{serve.api_url}/dynamicproxy-api/v1/alpha/mapping"
    body = json.dumps(
        {"domain": "www.cloud.test", "backends": [f"http://127.0.0.1:{backend.port}"]}
    )
    renamed = requests.post(
        f"{mapping}/web.cloud.test", data=body, headers={"X-Auth-Token": token}, timeout=15
    )
    assert (renamed.status_code, renamed.text) == (200, "OK")
    assert records(bind, "web.cloud.test") == set()
    assert ours(bind, "www.cloud.test")
    wait_routed(serve, "www.cloud.test")

    deleted = requests.delete(
        f"{mapping}/www.cloud.test", headers={"X-Auth-Token": token}, timeout=15
    )
    assert (deleted.status_code, deleted.text) == (200, "deleted")
    assert records(bind, "www.cloud.test") == set()
    assert bind.dig("www.cloud.test", "A") == set()

    refused = create(serve, token, "floating.cloud.test", backend.port)
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == (
        "floating.cloud.test already has DNS records Portway did not create: A 192.0.2.10"
    )
    assert records(bind, "floating.cloud.test") == {"A 192.0.2.10"}

    # An operator deletes a record; the check puts it back and says so.
    assert create(serve, token, "check.apps.test", backend.port).status_code == 201
    bind.nsupdate("update delete check.apps.test.")
    assert "check.apps.test" not in bind.names("apps.test")
    checked = cli(serve, "dns", "check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.splitlines() == ["created check.apps.test: its records were missing"]
    assert bind.dig("check.apps.test", "AAAA") == {AAAA}
    # A stray name of Portway's is listed and the exit status says so; --prune removes it.
    bind.nsupdate(f'update add stray.cloud.test. 120 TXT "heritage=portway,owner={OWNER}"')
    listed = cli(serve, "dns", "check")
    assert listed.returncode == 1
    assert listed.stdout.startswith("stray stray.cloud.test: ")
    pruned = cli(serve, "dns", "check", "--prune")
    assert (pruned.returncode, pruned.stdout) == (0, "removed stray stray.cloud.test\n")
    assert "stray.cloud.test" not in bind.names()

    # BIND stopped: the create fails with 503 and nothing is committed.
    bind.stop()
    before = hostnames(serve)
    started = time.monotonic()
    down = create(serve, token, "down.cloud.test", backend.port)
    assert down.status_code == 503
    error = down.json()["error"]
    assert error["title"] == "Service Unavailable"
    assert f"DNS server 127.0.0.1:{bind.port}" in error["message"]
    assert time.monotonic() - started < 10  # bounded by --dns-timeout
    assert hostnames(serve) == before
    failed = cli(serve, "dns", "check")
    assert failed.returncode == 1
    assert failed.stderr.startswith("portway: 503 Service Unavailable: ")


def test_the_periodic_check_recreates_a_deleted_record(
    own_bind: Bind, tmp_path: Path, backend: Backend
) -> None:
    pw = Portway(tmp_path / "data", extra=dns_flags(own_bind, interval=0.5), metrics=False)
    pw.start()
    try:
        token = member(pw, "alpha")
        assert create(pw, token, "periodic.cloud.test", backend.port).status_code == 201
        own_bind.nsupdate("update delete periodic.cloud.test.")
        deadline = time.monotonic() + 15
        while not ours(own_bind, "periodic.cloud.test"):
            assert time.monotonic() < deadline, "the periodic check did not re-create it"
            time.sleep(0.1)
    finally:
        pw.stop()
    assert "dns check: created periodic.cloud.test" in pw.output


def test_serve_refuses_an_incomplete_dns_config_before_touching_the_data_dir(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    ran = subprocess.run(
        [str(VENV_BIN / "portway"), "serve", "--data-dir", str(data), "--dns-server", "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ran.returncode != 0
    assert (
        ran.stderr.strip().splitlines()[-1] == "portway: --dns-zone is required with --dns-server"
    )
    assert not data.exists()
