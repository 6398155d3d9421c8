"""TCP relay throughput (issue 13): Portway's ``tcp`` proxy beside nginx ``stream {}``.

``python -m portway_bench.tcp_relay [--mib N] [--connections C] [--repeat R]`` (from
bench/, with the repository's virtualenv). One source process sends N MiB on every
connection and closes; Portway (``portway serve --workers 1``, a ``tcp`` proxy on a port
of its own) and nginx (``worker_processes 1``, ``stream { server { proxy_pass } }``)
relay it; C client threads read through each, runs interleaved, the median of R runs is
printed and written to bench/results/tcp-relay.json. Loopback only, a temporary
directory, bounded time.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from portway_bench.procs import Server, free_port
from portway_bench.targets import PORTWAY, REPO

STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
_SOURCE = """
import socket, sys, threading
size = int(sys.argv[1]) * 1024 * 1024
block = memoryview(bytes(1024 * 1024))
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[2]))); srv.listen(512)
def send(conn):
    with conn:
        try:
            for _ in range(size // len(block)):
                conn.sendall(block)
        except OSError:  # a readiness probe that connected and left
            pass
while True:
    conn, _ = srv.accept()
    threading.Thread(target=send, args=(conn,), daemon=True).start()
"""


def _read_all(port: int, expected: int, totals: list[int]) -> None:
    buf = bytearray(1024 * 1024)
    got = 0
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        while n := sock.recv_into(buf):
            got += n
    if got != expected:
        raise RuntimeError(f"read {got} of {expected} bytes through port {port}")
    totals.append(got)


def measure(port: int, mib: int, connections: int) -> float:
    """MiB/s relayed through ``port`` by ``connections`` readers at once."""
    totals: list[int] = []
    threads = [
        threading.Thread(target=_read_all, args=(port, mib << 20, totals))
        for _ in range(connections)
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - started
    if len(totals) != connections:
        raise RuntimeError(f"{connections - len(totals)} relays failed on port {port}")
    return sum(totals) / (1 << 20) / seconds


def start_nginx(directory: Path, listen: int, origin: int) -> Server:
    conf = directory / "nginx.conf"
    (directory / "logs").mkdir()
    conf.write_text(
        f"load_module {STREAM_MODULE};\n"
        "worker_processes 1;\ndaemon off;\n"
        f"pid {directory}/nginx.pid;\nerror_log {directory}/logs/error.log warn;\n"
        "events { worker_connections 4096; }\n"
        f"stream {{ server {{ listen 127.0.0.1:{listen}; proxy_pass 127.0.0.1:{origin}; }} }}\n"
    )
    server = Server("nginx", ["nginx", "-p", str(directory), "-c", str(conf)],
                    directory / "nginx.log", [listen])  # fmt: skip
    server.start()
    return server


def start_portway(directory: Path, listen: int, origin: int) -> Server:
    token = secrets.token_urlsafe(16)
    api, http, metrics = free_port(), free_port(), free_port()
    argv = [str(PORTWAY), "serve", "--data-dir", str(directory / "data"), "--workers", "1",
            "--api", f"127.0.0.1:{api}", "--http", f"127.0.0.1:{http}", "--https", "",
            "--metrics", f"127.0.0.1:{metrics}", "--backend-allow", "127.0.0.0/8",
            "--listen-ports", str(listen)]  # fmt: skip
    server = Server("portway", argv, directory / "portway.log", [api, http],
                    env={"PORTWAY_ADMIN_TOKEN": token})  # fmt: skip
    server.start()
    headers = {"X-Auth-Token": token}
    base = f"http://127.0.0.1:{api}"
    httpx.post(f"{base}/v1/projects", json={"project": {"name": "bench"}}, headers=headers)
    proxy = {
        "hostname": "relay.bench.test",
        "listen_port": listen,
        "protocol": "tcp",
        "timeouts": {"idle": 600},
        "backends": [{"address": "127.0.0.1", "port": origin}],
    }
    r = httpx.post(f"{base}/v1/bench/proxies", json={"proxy": proxy}, headers=headers)
    r.raise_for_status()
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", listen), timeout=1).close()
            return server
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=256, help="MiB sent per connection")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="portway-tcp-bench-") as tmp:
        root = Path(tmp)
        origin = free_port()
        source = subprocess.Popen([sys.executable, "-c", _SOURCE, str(args.mib), str(origin)])
        servers: list[Server] = []
        try:
            time.sleep(0.3)
            (root / "nginx").mkdir()
            (root / "portway").mkdir()
            ports = {"nginx-stream": free_port(), "portway-tcp": free_port()}
            servers.append(start_nginx(root / "nginx", ports["nginx-stream"], origin))
            servers.append(start_portway(root / "portway", ports["portway-tcp"], origin))
            runs: dict[str, list[float]] = {name: [] for name in ports}
            for _ in range(args.repeat):  # interleaved, so both see the same machine
                for name, port in ports.items():
                    runs[name].append(measure(port, args.mib, args.connections))
        finally:
            for server in servers:
                server.stop()
            source.kill()
            source.wait()
    medians = {name: statistics.median(values) for name, values in runs.items()}
    result = {"mib_per_connection": args.mib, "connections": args.connections,
              "repeat": args.repeat, "runs_mib_s": runs, "median_mib_s": medians,
              "ratio_to_nginx": medians["portway-tcp"] / medians["nginx-stream"]}  # fmt: skip
    out = REPO / "bench" / "results" / "tcp-relay.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for name, value in medians.items():
        print(f"{name:14} {value:8.0f} MiB/s  (runs: {', '.join(f'{v:.0f}' for v in runs[name])})")
    print(f"portway / nginx: {result['ratio_to_nginx']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
