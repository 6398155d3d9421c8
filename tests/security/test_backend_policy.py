"""Issue 7, defect 2: a tenant's backend must not reach Portway itself, the cloud's
metadata service or the node's loopback services.

The attack: a tenant creates a proxy whose backend is ``127.0.0.1:<API port>``; anyone on
the internet then reads the API (and ``/metrics``) through the public data plane.
"""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from portway.errors import ConfigError
from portway.model import Backend
from portway.model.backend_policy import BackendPolicy
from tests.api.conftest import Api, assert_error
from tests.dataplane.conftest import Origin, ProxyRunner, proxy_for
from tests.integration.harness import (
    VENV_BIN,
    Portway,
    create_project_and_proxy,
    free_port,
    wait_routed,
)
from tests.integration.harness import Backend as HttpBackend

STRICT = BackendPolicy()
LOOPBACK_OK = BackendPolicy.build(allow=["127.0.0.0/8", "::1/128"])

# Addresses no backend may ever use, whatever the operator allows.
NEVER = [
    "0.0.0.0",
    "0.1.2.3",
    "169.254.169.254",
    "169.254.0.1",
    "100.100.100.200",
    "224.0.0.1",
    "239.255.255.250",
    "255.255.255.255",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fd00:ec2::254",
    "ff02::1",
    "::ffff:169.254.169.254",
    "::ffff:0.0.0.0",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
]
LOOPBACK = ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"]


# -- the policy itself (pure) ------------------------------------------------------------


@pytest.mark.parametrize("ip", NEVER)
def test_always_denied_addresses_are_refused_even_when_everything_is_allowed(ip: str) -> None:
    everything = BackendPolicy.build(allow=["127.0.0.0/8", "::1/128", "0.0.0.0/0", "::/0"])
    for policy in (STRICT, everything):
        assert policy.check(ip, 80) is not None, (policy, ip)
        assert policy.check_backend(ip, 80) is not None


@pytest.mark.parametrize("ip", LOOPBACK)
def test_loopback_is_refused_unless_the_operator_names_it(ip: str) -> None:
    assert "loopback" in (STRICT.check(ip, 8000) or "")
    # A broad allow-list does not open loopback by accident.
    broad = BackendPolicy.build(allow=["0.0.0.0/0", "::/0"])
    assert broad.check(ip, 8000) is not None
    assert LOOPBACK_OK.check(ip, 8000) is None


@pytest.mark.parametrize(
    "name", ["localhost", "LocalHost.", "app.localhost", "127.1", "0x7f000001", "2130706433"]
)
def test_names_that_always_mean_loopback_are_checked_when_written(name: str) -> None:
    assert STRICT.check_backend(name, 8000) is not None
    assert LOOPBACK_OK.check_backend(name, 8000) is None


def test_ordinary_hostnames_wait_for_resolution() -> None:
    # Their address is only known (and only trustworthy) when the data plane connects.
    assert STRICT.check_backend("app.svc.cluster.local", 80) is None


def test_portways_own_listeners_are_refused_even_with_loopback_allowed() -> None:
    policy = BackendPolicy.build(
        allow=["127.0.0.0/8", "::1/128", "0.0.0.0/0", "::/0"],
        listeners=[("127.0.0.1", 5668), ("0.0.0.0", 8080), ("::", 8443), ("10.1.2.3", 9568)],
    )
    for ip, port in [
        ("127.0.0.1", 5668),
        ("::ffff:127.0.0.1", 5668),
        ("127.0.0.1", 8080),
        ("127.0.0.2", 8080),
        ("::1", 8080),
        ("127.0.0.1", 8443),
        ("::1", 8443),
        ("10.1.2.3", 9568),
    ]:
        assert "own listener" in (policy.check(ip, port) or ""), (ip, port)
    assert policy.check("127.0.0.1", 8000) is None
    assert policy.check("10.1.2.4", 9568) is None  # another machine, same port: fine
    assert policy.check_backend("localhost", 5668) is not None
    # A connection that reached this node itself, on a wildcard listener's port.
    assert policy.check_local(8080) is not None and policy.check_local(8443) is not None
    assert policy.check_local(8000) is None


def test_allow_list_admits_only_its_networks_and_deny_wins() -> None:
    policy = BackendPolicy.build(allow=["10.0.0.0/8", "fd00::/8"], deny=["10.9.0.0/16"])
    assert policy.check("10.1.2.3", 80) is None
    assert policy.check("fd00::7", 80) is None
    assert policy.check("10.9.1.1", 80) is not None
    assert policy.check("192.0.2.1", 80) is not None
    assert policy.check("::ffff:10.9.1.1", 80) is not None
    assert policy.check("127.0.0.1", 80) is not None
    # Without an allow-list, ordinary addresses pass and only the deny-list applies.
    deny_only = BackendPolicy.build(deny=["192.0.2.0/24"])
    assert deny_only.check("10.1.2.3", 80) is None
    assert deny_only.check("192.0.2.1", 80) is not None


@pytest.mark.parametrize("cidr", ["169.254.0.0/16", "169.254.169.254/32", "224.0.0.0/8", "::/128"])
def test_always_denied_ranges_cannot_be_allowed(cidr: str) -> None:
    with pytest.raises(ConfigError, match="never be allowed"):
        BackendPolicy.build(allow=[cidr])


def test_every_ipv4_address_embedded_in_ipv6_gets_the_ipv4_verdict() -> None:
    for v4 in ["127.0.0.1", "169.254.169.254", "10.0.0.1"]:
        mapped = f"::ffff:{v4}"
        nat64 = str(
            ipaddress.IPv6Address(
                int(ipaddress.IPv6Address("64:ff9b::")) + int(ipaddress.IPv4Address(v4))
            )
        )
        for policy in (STRICT, LOOPBACK_OK):
            verdict = policy.check(v4, 80) is None
            assert (policy.check(mapped, 80) is None) == verdict
            if not verdict:
                assert policy.check(nat64, 80) is not None


# -- the API: every write path answers 422 naming the field ----------------------------

WIKI = {"hostname": "wiki.alpha.example.org", "backend_port": 8080}
API_REFUSED = [
    "169.254.169.254",
    "0.0.0.0",
    "::ffff:169.254.169.254",
    "fe80::1",
    "ff02::1",
    "224.0.0.1",
    "fd00:ec2::254",
    "0x0",  # the resolver reads it as 0.0.0.0
]


def _proxy(api: Api) -> str:
    created = api.client.post("/v1/alpha/proxies", json={"proxy": WIKI}, headers=api.member)
    assert created.status_code == 201, created.text
    return str(created.json()["proxy"]["id"])


@pytest.mark.parametrize("address", API_REFUSED)
def test_proxy_create_refuses_a_forbidden_backend(api: Api, address: str) -> None:
    body = {**WIKI, "backends": [{"address": "10.0.0.5"}, {"address": address, "port": 80}]}
    r = api.client.post("/v1/alpha/proxies", json={"proxy": body}, headers=api.member)
    assert_error(r, 422, "backends[1].address")
    listed = api.client.get("/v1/alpha/proxies", headers=api.member).json()["proxies"]
    assert listed == []


@pytest.mark.parametrize("address", API_REFUSED)
def test_backend_add_and_replace_refuse_a_forbidden_backend(api: Api, address: str) -> None:
    pid = _proxy(api)
    url = f"/v1/alpha/proxies/{pid}/backends"
    added = api.client.post(url, json={"backend": {"address": address}}, headers=api.member)
    assert_error(added, 422, "backend.address")
    replaced = api.client.put(
        url,
        json={"backends": [{"address": "10.0.0.5"}, {"address": address}]},
        headers=api.member,
    )
    assert_error(replaced, 422, "backends[1].address")
    assert api.client.get(url, headers=api.member).json()["backends"] == []


def test_the_refusal_says_why(api: Api) -> None:
    pid = _proxy(api)
    r = api.client.post(
        f"/v1/alpha/proxies/{pid}/backends",
        json={"backend": {"address": "169.254.169.254"}},
        headers=api.member,
    )
    assert "link-local" in assert_error(r, 422)["message"]  # type: ignore[operator]


# -- the data plane: checked right before connecting, after resolution -----------------


def _get(runner: ProxyRunner) -> httpx.Response:
    return httpx.get(
        f"http://127.0.0.1:{runner.port}/", headers={"Host": "app.example.org"}, timeout=5
    )


@pytest.mark.parametrize("address", ["localhost", "127.0.0.1"])
def test_data_plane_refuses_a_loopback_backend_under_the_strict_policy(
    make_proxy: Callable[..., ProxyRunner], origin: Origin, address: str
) -> None:
    # As if the backend had been stored before the operator tightened the policy, or
    # were a name whose DNS answer changed after it was written.
    runner = make_proxy(backend_policy=STRICT)
    backend = Backend(id="b", address=address, port=origin.port)
    runner.route(proxy_for("app.example.org", backend))
    assert _get(runner).status_code == 502
    assert origin.seen == []


def test_data_plane_connects_to_a_resolved_name_the_policy_allows(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy(backend_policy=LOOPBACK_OK)
    runner.route(
        proxy_for("app.example.org", Backend(id="b", address="localhost", port=origin.port))
    )
    response = _get(runner)
    assert response.status_code == 200 and response.text.startswith("one ")


def test_data_plane_never_connects_to_its_own_listener(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    # Without the check a backend on the data plane's own port loops each request into
    # itself until connections run out.
    port = free_port()
    policy = BackendPolicy.build(allow=["127.0.0.0/8"], listeners=[("127.0.0.1", port)])
    runner = make_proxy(port=port, backend_policy=policy)
    runner.route(proxy_for("app.example.org", Backend(id="self", address="127.0.0.1", port=port)))
    started = time.monotonic()
    assert _get(runner).status_code == 502
    assert time.monotonic() - started < 2
    assert runner.on_loop(lambda: runner.dp.open_connections) <= 1


def test_a_refused_backend_fails_over_to_an_allowed_one(
    make_proxy: Callable[..., ProxyRunner], origin: Origin
) -> None:
    runner = make_proxy(backend_policy=BackendPolicy.build(allow=["127.0.0.1/32"]))
    refused = Backend(id="refused", address="127.0.0.2", port=origin.port)
    runner.route(proxy_for("app.example.org", refused, origin.backend()))
    for _ in range(6):
        assert _get(runner).status_code == 200


# -- the whole node: `portway serve` -------------------------------------------------------


def _attack(pw: Portway, port: int, host: str) -> httpx.Response:
    """A tenant (member token) aims a backend at ``127.0.0.1:port``."""
    r = pw.api("POST", "/v1/projects", json={"project": {"name": "alpha"}})
    assert r.status_code in (201, 409), r.text
    made = pw.api("POST", "/v1/alpha/tokens", json={"token": {"role": "member"}}).json()["token"][
        "secret"
    ]
    body = {"proxy": {"hostname": host, "backends": [{"address": "127.0.0.1", "port": port}]}}
    return pw.api("POST", "/v1/alpha/proxies", token=made, json=body)


def test_tenant_cannot_point_a_backend_at_portways_api(portway: Portway) -> None:
    r = _attack(portway, portway.api_port, "leak.alpha.test")
    if r.status_code == 201:  # the defect: the API is now public through the data plane
        wait_routed(portway, "leak.alpha.test")
        leaked = portway.get("leak.alpha.test", "/metrics")
        pytest.fail(f"backend on the API port accepted; data plane /metrics: {leaked.text[:200]}")
    assert_error(r, 422, "backends[0].address")
    assert "own listener" in r.json()["error"]["message"]


@pytest.mark.parametrize("which", ["http_port", "https_port", "metrics_port"])
def test_tenant_cannot_point_a_backend_at_any_other_portway_listener(
    portway: Portway, which: str
) -> None:
    r = _attack(portway, getattr(portway, which), f"{which.replace('_', '-')}.alpha.test")
    assert_error(r, 422, "backends[0].address")


def test_tenant_cannot_point_a_backend_at_a_port_of_listen_ports(tmp_path: Path) -> None:
    """A port the operator lets proxies claim is one of Portway's own listeners (or will
    be, when some proxy claims it): a backend there would loop through the node."""
    single, low = free_port(), free_port()
    pw = Portway(tmp_path / "data", extra=["--listen-ports", f"{single},{low}-{low + 2}"])
    pw.start()
    try:
        for port, host in ((single, "one.alpha.test"), (low + 1, "range.alpha.test")):
            r = _attack(pw, port, host)
            assert_error(r, 422, "backends[0].address")
            assert "own listener" in r.json()["error"]["message"]
    finally:
        pw.stop()


def test_listen_ports_are_own_listeners_in_the_nodes_backend_policy() -> None:
    policy = BackendPolicy.build(
        allow=["127.0.0.0/8", "10.0.0.0/8"],
        listeners=[("0.0.0.0", 8080)],
        port_ranges=[("10.0.0.1", 8000, 8999), ("0.0.0.0", 9000, 9000)],
    )
    assert "own listener" in (policy.check("10.0.0.1", 8500) or "")
    assert "own listener" in (policy.check("127.0.0.2", 9000) or "")  # a wildcard's port
    assert policy.check("10.0.0.2", 8500) is None  # another host's port is not ours
    assert policy.check("10.0.0.1", 9001) is None
    assert policy.check_local(9000) is not None


@pytest.mark.parametrize("workers", [0, 2])
def test_tightened_policy_applies_to_backends_already_stored(
    tmp_path: Path, backends: list[HttpBackend], workers: int
) -> None:
    """A backend written while loopback was allowed stops being used once the operator
    restarts without --backend-allow: the data plane checks before every connect."""
    data = tmp_path / "data"
    pw = Portway(data, workers=workers)
    pw.start()
    try:
        create_project_and_proxy(pw, "alpha", "old.alpha.test", [backends[0].port])
        wait_routed(pw, "old.alpha.test")
    finally:
        pw.stop()
    strict = Portway(data, workers=workers, loopback_backends=False)
    strict.start()
    try:
        seen = len(backends[0].seen)
        statuses = [strict.get("old.alpha.test").status_code for _ in range(5)]
        # Refused like an unreachable backend: 502, and after --passive-failures (3) of
        # them the backend is ejected, so the proxy has none left: 503.
        assert statuses[0] == 502 and set(statuses) <= {502, 503}, statuses
        assert len(backends[0].seen) == seen
    finally:
        strict.stop()
    assert f"backend policy refused 127.0.0.1:{backends[0].port}" in strict.output


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--backend-allow", "169.254.0.0/16"], "can never be allowed"),
        (["--backend-allow", "127.0.0.0/8,0.0.0.0/8"], "can never be allowed"),
        (["--backend-allow", "10.0.0.0/33"], "--backend-allow"),
        (["--backend-deny", "nonsense"], "--backend-deny"),
        (["--metrics", "nonsense"], "--metrics"),
    ],
)
def test_bad_policy_flags_fail_with_one_line(tmp_path: Path, args: list[str], needle: str) -> None:
    done = subprocess.run(
        [str(VENV_BIN / "portway"), "serve", "--data-dir", str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("portway: "), lines


def test_a_connection_to_this_node_is_recognised_after_connecting() -> None:
    """The backstop for a wildcard listener reached on one of the node's own (non-
    loopback) addresses, which the policy cannot list in advance: the kernel gives such
    a connection the destination itself as its source address."""
    from portway.dataplane.upstream import _reached_self

    async def reached(host: str) -> bool:
        server = await asyncio.start_server(lambda r, w: w.close(), host, 0)
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_connection(asyncio.Protocol, host, port)
        try:
            return _reached_self(transport)
        finally:
            transport.close()
            server.close()

    assert asyncio.run(reached("127.0.0.1")) is True
    assert asyncio.run(reached("127.0.0.2")) is False  # source 127.0.0.1: another address
