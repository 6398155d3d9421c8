"""A tier as docs/ha.md lays it out, in namespaces: PostgreSQL primary + streaming replica,
three standalone ``portway serve`` nodes on the multi-host URL, and a client namespace
that holds the test's own sockets and the backend."""

from __future__ import annotations

import http.client
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.ha.netns import SUBNET, Net
from tests.ha.postgres import Postgres, multi_host_url
from tests.integration.harness import VENV_BIN, Backend, Portway, start_backend

DATABASE = "portway"
PROJECT = "ha"
NODES = {"n1": 11, "n2": 12, "n3": 13}  # node name → host part of its address
CLIENT = "client"
API_PORT, HTTP_PORT, HTTPS_PORT, METRICS_PORT = 5668, 80, 443, 9568


@dataclass
class Tier:
    net: Net
    root: Path
    primary: Postgres
    replica: Postgres
    nodes: dict[str, Portway] = field(default_factory=dict)
    backend: Backend | None = None

    @property
    def url(self) -> str:
        return multi_host_url([self.primary, self.replica], DATABASE)

    def build(self) -> None:
        """The namespaces, then (from the client namespace) PostgreSQL and the nodes."""
        self.net.create()
        for member, host in [("pg1", 2), ("pg2", 3), *NODES.items(), (CLIENT, 200)]:
            self.net.add(member, host)
        with self.net.entered(CLIENT):
            self._start()

    def _start(self) -> None:
        self.primary.init_primary()
        self.primary.start()
        with psycopg.connect(self.primary.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        self.replica.init_replica(self.primary)
        self.replica.start()
        self.replica.wait_streaming(self.primary)
        self.backend = start_backend("ha", host=self.net.members[CLIENT])
        key = self.root / "secret.key"
        subprocess.run(
            [str(VENV_BIN / "portway"), "keys", "add", "--secret-key-file", str(key)],
            check=True,
            capture_output=True,
        )
        for name in NODES:
            self.nodes[name] = self._node(name, key)
        token = self.nodes["n1"].admin_token  # the store's: every node accepts the same one
        for node in self.nodes.values():
            node.admin_token = token
            node.launch()
        for node in self.nodes.values():
            node.wait_up()
        r = self.nodes["n1"].api("POST", "/v1/projects", json={"project": {"name": PROJECT}})
        assert r.status_code == 201, r.text

    def _node(self, name: str, key: Path) -> Portway:
        node = Portway(
            self.root / name,
            host=self.net.members[name],
            bind="0.0.0.0",  # the node's own address and the floating one, when it has it
            wrap=self.net.exec(name),
            loopback_backends=False,
            log=self.root / f"{name}.log",
            extra=[
                *("--store", self.url, "--secret-key-file", str(key)),
                *("--node-name", name, "--node-report-interval", "0.5"),
                *("--backend-allow", f"{SUBNET}.0/24"),
            ],
        )
        node.http_port, node.https_port = HTTP_PORT, HTTPS_PORT
        node.api_port, node.metrics_port = API_PORT, METRICS_PORT
        return node

    def close(self) -> None:
        for node in self.nodes.values():
            if node.proc is not None:
                node.stop()
        if self.backend is not None:
            self.backend.stop()
        self.net.close()  # kills PostgreSQL and keepalived too, whatever state they are in

    # -- what the tests ask ------------------------------------------------------------

    def proxy_body(self, hostname: str) -> dict[str, Any]:
        assert self.backend is not None
        backend = {"address": self.net.members[CLIENT], "port": self.backend.port}
        return {"proxy": {"hostname": hostname, "backends": [backend]}}


def status_of(address: str, host: str, timeout: float = 2) -> int:
    """What ``address``'s data plane answers for ``host`` on a new connection (0: no
    answer). http.client, not httpx: an httpx client costs tens of milliseconds to make
    (its TLS context), which would be measured as propagation time."""
    conn = http.client.HTTPConnection(address, HTTP_PORT, timeout=timeout)
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        response.read()
        return response.status
    except OSError:
        return 0
    finally:
        conn.close()


def wait_status(address: str, host: str, status: int, timeout: float = 10) -> float:
    """Seconds until ``address`` answers ``status`` for ``host``."""
    start = time.monotonic()
    while status_of(address, host) != status:
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{address} did not answer {status} for {host} in {timeout}s")
        time.sleep(0.002)
    return time.monotonic() - start


def nodes_view(node: Portway) -> dict[str, dict[str, Any]]:
    r = node.api("GET", "/v1/nodes")
    assert r.status_code == 200, r.text
    return {n["name"]: n for n in r.json()["nodes"]}


def wait_converged(node: Portway, revision: int, timeout: float = 15) -> dict[str, Any]:
    """Until every node reports ``revision`` applied (seen through ``node``'s API)."""
    deadline = time.monotonic() + timeout
    while True:
        view = nodes_view(node)
        if all(view.get(n, {}).get("applied_revision") == revision for n in NODES):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
