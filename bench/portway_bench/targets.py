"""The proxies under test: nginx, HAProxy and Portway, each started from scratch on loopback.

A target is started with the list of hostnames it must route to the origin; ``peer``
names the nginx configuration its figures are compared with (same worker count).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from portway_bench.configs import write_haproxy, write_nginx
from portway_bench.preload import preload
from portway_bench.procs import Memory, Server, StartError, free_port

REPO = Path(__file__).resolve().parents[2]
PORTWAY = REPO / ".venv" / "bin" / "portway"
# Above this many proxies Portway's store is preloaded instead of filled through the API.
API_SETUP_LIMIT = 2_000


@dataclass
class Target:
    name: str
    kind: str  # nginx | haproxy | portway
    workers: int  # worker processes or threads; used to pick the nginx peer
    peer: str  # the nginx target its ratios are computed against
    tls: bool = True
    server: Server | None = field(default=None, repr=False)
    ports: dict[str, int] = field(default_factory=dict)
    note: str = ""
    token: str = field(default="", repr=False)
    budget: float = 600.0  # seconds allowed for creating the proxies through the API
    dataplane: str = "builtin"  # portway: --dataplane builtin|nginx|haproxy
    setup_s: float = 0.0  # seconds from start to routing every host

    def start(self, directory: Path, origin: int, hosts: list[str]) -> None:
        self.ports = {"http": free_port(), "https": free_port(), "origin": origin}
        if self.kind == "nginx":
            self._start_nginx(directory, hosts)
        elif self.kind == "haproxy":
            self._start_haproxy(directory, hosts)
        else:
            self._start_portway(directory, hosts)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def memory(self) -> Memory:
        assert self.server is not None
        return self.server.memory()

    def _start_nginx(self, directory: Path, hosts: list[str]) -> None:
        workers = "auto" if self.workers == 0 else str(self.workers)
        conf = write_nginx(directory, self.name, workers, self.ports, hosts)
        argv = ["nginx", "-p", str(directory), "-c", str(conf), "-g", "daemon off;"]
        self.server = Server(self.name, argv, directory / f"{self.name}.log", self._listen())
        started = time.monotonic()
        self.server.start(timeout=300)
        self.setup_s = time.monotonic() - started

    def _start_haproxy(self, directory: Path, hosts: list[str]) -> None:
        conf = write_haproxy(directory, self.name, self.workers, self.ports, hosts)
        argv = ["haproxy", "-f", str(conf), "-db"]
        self.server = Server(self.name, argv, directory / f"{self.name}.log", self._listen())
        started = time.monotonic()
        self.server.start(timeout=300)
        self.setup_s = time.monotonic() - started

    def _listen(self) -> list[int]:
        return [self.ports["http"], self.ports["https"]]

    def _start_portway(self, directory: Path, hosts: list[str]) -> None:
        data = directory / f"{self.name}-data"
        shutil.rmtree(data, ignore_errors=True)
        self.ports["api"] = free_port()
        help_text = portway_serve_help()
        self.tls = "--https" in help_text
        argv = [
            str(PORTWAY), "serve", "--data-dir", str(data),
            "--http", f"127.0.0.1:{self.ports['http']}",
            "--api", f"127.0.0.1:{self.ports['api']}", "--workers", str(self.workers),
            "--log-level", "warning",
        ]  # fmt: skip
        metrics = ""  # none, so a bench never collides with another node's port
        if self.dataplane != "builtin":  # drivers.py reads the plane's reload counter
            self.ports["metrics"] = free_port()
            metrics = f"127.0.0.1:{self.ports['metrics']}"
            prefix = directory / f"{self.name}-{self.dataplane}"
            argv += ["--dataplane", self.dataplane, f"--{self.dataplane}-prefix", str(prefix)]
        if "--backend-allow" in help_text:
            # The origin listens on 127.0.0.1, which Portway refuses unless allowed.
            argv += ["--backend-allow", "127.0.0.0/8", "--metrics", metrics]
        listen = [self.ports["http"], self.ports["api"]]
        if self.tls:
            argv += ["--https", f"127.0.0.1:{self.ports['https']}"]
            listen.append(self.ports["https"])
        else:
            self.note = "portway serve has no --https yet: TLS scenarios skipped"
        token = self.token = secrets.token_urlsafe(24)
        env = {"PORTWAY_ADMIN_TOKEN": token}
        self.server = Server(self.name, argv, directory / f"{self.name}.log", listen, env)
        preloaded = len(hosts) > API_SETUP_LIMIT
        if preloaded:  # see preload.py: the API would take minutes for 100 000 proxies
            preload(data, hosts, self.ports["origin"])
        started = time.monotonic()
        self.server.start(timeout=300)
        try:
            if preloaded:
                check_api(self.ports, token)
                wait_routed(self.ports["http"], hosts[-1], timeout=300)
            else:
                configure_portway(self.ports, token, hosts, self.budget)
            self.setup_s = time.monotonic() - started
        except Exception:
            self.stop()
            raise


def portway_serve_help() -> str:
    if not PORTWAY.exists():
        raise StartError(f"{PORTWAY} is missing (run scripts/setup.sh)")
    proc = subprocess.run([str(PORTWAY), "serve", "--help"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise StartError(f"'portway serve --help' failed: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def configure_portway(
    ports: dict[str, int], token: str, hosts: list[str], budget: float = 600.0
) -> None:
    """Create project 'bench' and one proxy per host, then wait until the data plane
    routes the last host. Gives up (StartError) when creation takes over ``budget`` s."""
    deadline = time.monotonic() + budget
    created = [0]
    stop = threading.Event()  # set on the first failure, so the other threads give up too
    api = f"http://127.0.0.1:{ports['api']}"
    headers = {"X-Auth-Token": token}
    backend = [{"address": "127.0.0.1", "port": ports["origin"]}]
    with httpx.Client(base_url=api, headers=headers, timeout=60) as client:
        check(client.post("/v1/projects", json={"project": {"name": "bench"}}))

        def create(host: str) -> None:
            body = {
                "proxy": {"hostname": host, "backend_port": ports["origin"], "backends": backend}
            }
            if stop.is_set() or time.monotonic() > deadline:
                return  # the caller reports how far it got
            try:
                check(client.post("/v1/bench/proxies", json=body))
            except BaseException:
                stop.set()
                raise
            created[0] += 1

        # SQLite serialises writes anyway; a few threads keep the API busy between commits.
        with ThreadPoolExecutor(max_workers=8 if len(hosts) > 1 else 1) as pool:
            try:
                list(pool.map(create, hosts))
            except BaseException:
                stop.set()
                raise
    if created[0] < len(hosts):
        raise StartError(
            f"created only {created[0]} of {len(hosts)} proxies through the API in "
            f"{budget:.0f} s (--portway-setup-budget)"
        )
    wait_routed(ports["http"], hosts[-1], timeout=120 + len(hosts) / 500)


def check_api(ports: dict[str, int], token: str) -> None:
    """The API answers and knows the preloaded project."""
    with httpx.Client(timeout=10) as client:
        check(
            client.get(
                f"http://127.0.0.1:{ports['api']}/v1/bench/proxies?hostname=p1.bench.test",
                headers={"X-Auth-Token": token},
            )
        )


def check(response: httpx.Response) -> None:
    if response.is_error:
        raise StartError(
            f"API {response.request.method} {response.request.url.path} → "
            f"{response.status_code}: {response.text[:300]}"
        )


def wait_routed(http_port: int, host: str, timeout: float) -> float:
    """Poll the data plane until ``host`` answers 200; return the seconds it took."""
    started = time.monotonic()
    with httpx.Client(timeout=2) as client:
        while time.monotonic() - started < timeout:
            try:
                r = client.get(f"http://127.0.0.1:{http_port}/", headers={"Host": host})
                if r.status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    raise StartError(f"data plane did not route {host} within {timeout:.0f}s")


def standard_targets(only: list[str] | None = None, budget: float = 600.0) -> list[Target]:
    cpus = os.cpu_count() or 1
    targets = [
        Target("nginx-w1", "nginx", 1, "nginx-w1"),
        Target("nginx-auto", "nginx", 0, "nginx-auto", note=f"auto = {cpus} workers"),
        Target("haproxy-t1", "haproxy", 1, "nginx-w1"),
        Target("haproxy-t2", "haproxy", 2, "nginx-auto"),
        Target("portway-w1", "portway", 1, "nginx-w1"),
        Target("portway-w2", "portway", 2, "nginx-auto"),
    ]
    for target in targets:
        target.budget = budget
    return [t for t in targets if not only or t.name in only or t.kind in only]
