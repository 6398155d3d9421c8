"""Python-level CPU per proxied request, with fake transports: ``python -m portway_bench.hotpath``.

No sockets, no event loop: one client connection and one pooled upstream connection
are driven by hand (request bytes into the client, response bytes into the upstream),
so what is timed is only the data plane's own Python code per keep-alive request: parse,
route (cached), pick, re-encode, relay, record. ``time.process_time`` over many
requests, best of several rounds, makes this far steadier than a wrk run on a shared
machine; it complements ``portway_bench.cpu``, which counts everything (kernel, uvloop).

With ``--src A --src B`` each tree runs in its own interpreter (``A/src`` first on
``PYTHONPATH``), alternately (``--together``: at the same moment), and the best round
of each interpreter is kept; the medians and the median run-by-run ratio are printed.
Only the public shape of the data plane is used (``DataPlane``, ``ClientConnection(dp)``,
``UpstreamConnection(pool, bucket)``), so the same script measures old and new code.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REQUEST = (
    b"GET /index.html?x=1 HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sun, 22 Nov 2026 10:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 36\r\nConnection: keep-alive\r\n\r\n"
    b"hello from the portway bench origin\n"
)


class FakeTransport:
    """Just enough of an asyncio transport; counts what is written."""

    def __init__(self, sockname: tuple[str, int], peername: tuple[str, int]) -> None:
        self.extra = {"sockname": sockname, "peername": peername}
        self.written = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writelines(self, pieces: Any) -> None:
        for piece in pieces:
            self.written += len(piece)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        raise AssertionError("the benchmark connection closed")

    abort = close


def measure(requests: int, rounds: int) -> float:
    """Best µs per request over ``rounds`` rounds of ``requests`` requests."""
    from portway.dataplane import DataPlane
    from portway.dataplane.client import ClientConnection
    from portway.dataplane.upstream import UpstreamConnection
    from portway.model import Backend, Proxy
    from portway.router import RouteTable, Snapshot

    dp = DataPlane()
    backend = Backend(id="b1", address="127.0.0.1", port=9)
    proxy = Proxy(id="p1", project="bench", hostname="bench.test", backends=(backend,))
    dp.apply(Snapshot(version=1, routes=RouteTable.build([proxy])))
    bucket = dp.pool.bucket("127.0.0.1", 9)
    upstream = UpstreamConnection(dp.pool, bucket)
    up_transport = FakeTransport(("127.0.0.1", 40000), ("127.0.0.1", 9))
    upstream.connection_made(up_transport)  # type: ignore[arg-type]
    dp.pool.release(bucket, upstream)
    client = ClientConnection(dp)
    client_transport = FakeTransport(("127.0.0.1", 8080), ("127.0.0.1", 50000))
    client.connection_made(client_transport)  # type: ignore[arg-type]
    feed_client, feed_upstream = client.data_received, upstream.data_received
    for _ in range(1000):  # warm-up: plan built, route cached, pool steady
        feed_client(REQUEST)
        feed_upstream(RESPONSE)
    if up_transport.written == 0 or client_transport.written == 0:
        raise RuntimeError("nothing was relayed")
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(requests):
            feed_client(REQUEST)
            feed_upstream(RESPONSE)
        best = min(best, (time.process_time() - started) / requests * 1e6)
    return best


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m portway_bench.hotpath", description=__doc__)
    p.add_argument("--src", action="append", type=Path, help="source tree (repeatable)")
    p.add_argument("--requests", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=5, help="rounds per interpreter")
    p.add_argument("--repeat", type=int, default=1, help="interpreters per tree, alternating")
    p.add_argument("--together", action="store_true", help="run the trees at the same time")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(f"{measure(args.requests, args.rounds):.3f}")
        return 0
    if not args.src:
        print(f"{measure(args.requests, args.rounds):.2f} µs/request (best round)")
        return 0
    best: dict[Path, list[float]] = {src: [] for src in args.src}
    here = str(Path(__file__).resolve().parents[1])
    argv_ = [sys.executable, "-m", "portway_bench.hotpath", "--child"]
    argv_ += ["--requests", str(args.requests), "--rounds", str(args.rounds)]

    def child(src: Path) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": f"{src.resolve() / 'src'}{os.pathsep}{here}"}
        return subprocess.Popen(argv_, env=env, stdout=subprocess.PIPE, text=True)

    for rep in range(args.repeat):
        if args.together:  # all trees at the same moment: a paired sample
            running = [(src, child(src)) for src in args.src]
        else:
            running = []
            for src in args.src:
                proc = child(src)
                proc.wait()
                running.append((src, proc))
        for src, proc in running:
            out, _ = proc.communicate()
            if proc.returncode:
                raise SystemExit(f"{src}: the measuring child failed")
            best[src].append(float(out))
            print(f"#{rep + 1} {src}: {best[src][-1]:.2f} µs/request", flush=True)
    for src, values in best.items():
        listed = ", ".join(f"{v:.2f}" for v in values)
        mid = statistics.median(values)
        print(f"{src}: best {min(values):.2f}, median {mid:.2f} µs/request ({listed})")
    first = args.src[0]
    for src in args.src[1:]:  # run by run, so slow moments cancel out
        ratios = [b / a for a, b in zip(best[first], best[src], strict=True)]
        print(f"{src} / {first}: median ratio {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
