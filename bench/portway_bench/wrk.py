"""Running wrk and reading its results from a Lua ``done`` hook that prints one JSON line."""

from __future__ import annotations

import functools
import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

HOST = "bench.test"
MARK = "@@WRK@@"

# Host selection: one fixed Host header, or a random one of N per request (route-table
# scale). "close" sends Connection: close so every request opens a new connection.
LUA = """\
local hosts = {hosts}
local close = {close}
local path = "{path}"
math.randomseed(os.time())
request = function()
  local headers = {{}}
  if hosts > 0 then headers["Host"] = "p" .. math.random(hosts) .. ".bench.test"
  else headers["Host"] = "bench.test" end
  if close then headers["Connection"] = "close" end
  return wrk.format("GET", path, headers)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p99_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class Load:
    """What wrk sends: connections, duration, and the shape of each request."""

    connections: int
    duration: float
    threads: int = 2
    path: str = "/"
    tls: bool = False
    close: bool = False
    hosts: int = 0  # 0: Host bench.test; N: a random one of p1..pN.bench.test


@dataclass(frozen=True)
class Result:
    requests: int
    duration_s: float
    bytes: int
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors (connect/read/write/timeout) plus non-2xx/3xx responses

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def mbps(self) -> float:
        return self.bytes / self.duration_s / 1e6 if self.duration_s else 0.0

    def as_dict(self) -> dict[str, float]:
        data = asdict(self)
        data.update(rps=round(self.rps, 1), mbps=round(self.mbps, 2))
        return data


def script(directory: Path, load: Load) -> Path:
    text = LUA.format(
        hosts=load.hosts, close="true" if load.close else "false", path=load.path, mark=MARK
    )
    path = directory / f"wrk-{load.hosts}-{int(load.close)}-{load.path.strip('/') or 'root'}.lua"
    path.write_text(text)
    return path


@functools.cache
def private_hosts_works() -> bool:
    """Whether wrk can run in a private mount namespace (root, or CAP_SYS_ADMIN)."""
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


def command(directory: Path, load: Load, port: int) -> list[str]:
    """wrk's argv. For TLS, wrk sends the URL's host as SNI; a proxy that checks SNI
    against Host (Portway answers 421) needs https://bench.test:PORT, so wrk then runs in a
    private mount namespace whose /etc/hosts maps bench.test to 127.0.0.1. The machine's
    own /etc/hosts is never touched."""
    scheme = "https" if load.tls else "http"
    threads = max(1, min(load.threads, load.connections))
    host = "127.0.0.1"
    prefix: list[str] = []
    if load.tls and private_hosts_works():
        hosts = directory / "wrk-hosts"
        hosts.write_text(f"127.0.0.1 localhost {HOST}\n")
        host = HOST
        script_ = 'mount --bind "$0" /etc/hosts && exec "$@"'
        prefix = ["unshare", "-m", "sh", "-c", script_, str(hosts)]
    return [
        *prefix,
        "wrk", "-t", str(threads), "-c", str(load.connections), "-d", f"{load.duration:g}s",
        "--timeout", "5s", "-s", str(script(directory, load)), f"{scheme}://{host}:{port}{load.path}",
    ]  # fmt: skip


def run(directory: Path, load: Load, port: int) -> Result:
    proc = subprocess.run(
        command(directory, load, port), capture_output=True, text=True, timeout=load.duration + 60
    )
    return parse(proc.stdout + proc.stderr)


def parse(output: str) -> Result:
    for line in output.splitlines():
        if line.startswith(MARK):
            data = json.loads(line[len(MARK) :])
            errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
            return Result(
                requests=data["requests"],
                duration_s=data["duration_us"] / 1e6,
                bytes=data["bytes"],
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                errors=errors,
            )
    raise RuntimeError(f"wrk printed no result: {output.strip()[-300:]}")
