"""User-space instructions per proxied request, counted by valgrind (deterministic A/B).

Load on a shared machine moves every timing, CPU time included (a VM's steal time is
counted into it). An instruction count does not move: this runs a ``DataPlane`` with
real sockets and uvloop under ``valgrind --tool=cachegrind`` (instructions only, no
cache simulation), in front of an nginx origin, and drives it from a separate process
(one keep-alive connection, one request at a time). It counts twice, for
``--requests`` and for 5x as many, so the difference divided by the extra requests is
the cost of one request, without start-up. Kernel work is not counted: compare system
calls with ``strace -c`` if a change could alter them.

    PYTHONPATH=bench .venv/bin/python -m portway_bench.instructions --src /tmp/old --src .
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from portway_bench import configs
from portway_bench.procs import Server, free_port

SERVER = """
import asyncio, sys, uvloop
from portway.dataplane import DataPlane
from portway.model import Backend, Proxy
from portway.model.backend_policy import BackendPolicy
from portway.router import RouteTable, Snapshot

port, origin, total = map(int, sys.argv[1:4])

async def main():
    # The production policy refuses loopback backends; the origin listens on 127.0.0.1.
    dp = DataPlane(backend_policy=BackendPolicy.build(allow=["127.0.0.0/8"]))
    backend = Backend(id="origin", address="127.0.0.1", port=origin)
    proxy = Proxy(id="p", project="bench", hostname="bench.test", backends=(backend,))
    dp.apply(Snapshot(version=1, routes=RouteTable.build([proxy])))
    await dp.listen_http("127.0.0.1", port)
    while sum(dp.metrics.requests.values()) < total:
        await asyncio.sleep(1.0)  # rarely: this loop's cost grows with the run's length
    await dp.close(1.0)

uvloop.run(main())
"""
REQUEST = b"GET / HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
CONNECTIONS = 1  # strictly one request at a time: no batching that timing could vary


def drive(port: int, count: int) -> None:
    """``count`` requests over CONNECTIONS keep-alive connections, in lock step."""
    deadline = time.monotonic() + 300
    while True:
        try:
            socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    body_end = configs.SMALL_BODY.encode()
    for _ in range(0, count, CONNECTIONS):
        for sock in socks:
            sock.sendall(REQUEST)
        for sock in socks:
            data = b""
            while not data.endswith(body_end):
                got = sock.recv(65536)
                data += got
                if not got or not data.startswith(b"HTTP/1.1 200"[: len(data)]):
                    raise RuntimeError(f"not a 200 from the data plane: {data[:200]!r}")
    for sock in socks:
        sock.close()


def count(src: Path, origin: int, requests: int, directory: Path) -> int:
    """Instructions of the data plane process that served ``requests`` requests."""
    port = free_port()
    script = directory / "server.py"
    script.write_text(SERVER)
    env = {**os.environ, "PYTHONPATH": str(src.resolve() / "src"), "PYTHONHASHSEED": "0"}
    argv = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, str(script), str(port), str(origin), str(requests),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
    drive(port, requests)
    _, err = proc.communicate(timeout=600)
    found = re.search(r"I\s+refs:\s+([\d,]+)", err)
    if proc.returncode or found is None:
        raise RuntimeError(f"valgrind run failed: {err[-500:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m portway_bench.instructions", description=__doc__)
    p.add_argument("--src", action="append", type=Path, help="source tree (repeatable)")
    p.add_argument("--requests", type=int, default=1000)
    args = p.parse_args(argv)
    trees = args.src or [Path(__file__).resolve().parents[2]]
    with tempfile.TemporaryDirectory(prefix="portway-ir-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)  # nginx workers run as 'nobody'
        origin_port = free_port()
        conf = configs.write_origin(directory, origin_port)
        nginx = ["nginx", "-p", str(directory), "-c", str(conf), "-g", "daemon off;"]
        origin = Server("origin", nginx, directory / "origin.log", [origin_port])
        origin.start()
        try:
            per_request = {}
            for src in trees:
                few = count(src, origin_port, args.requests, directory)
                many = count(src, origin_port, args.requests * 5, directory)
                per_request[src] = (many - few) / (args.requests * 4)
                print(f"{src}: {per_request[src]:,.0f} instructions/request", flush=True)
        finally:
            origin.stop()
    first = trees[0]
    for src in trees[1:]:
        print(f"{src} / {first}: {per_request[src] / per_request[first]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
