"""CPU time per request of Portway under wrk: ``python -m portway_bench.cpu``.

Requests per second move with whatever else the machine runs; the CPU time the Portway
process tree itself spends per request (user + system ticks from ``/proc/<pid>/stat``,
divided by wrk's request count) moves much less, so it is the figure to compare two
versions of the data plane on a shared machine. With ``--src A --src B`` one Portway is
started per source tree (``A/src`` first on ``PYTHONPATH``) and the runs are
interleaved (A B, B A, A B, ...), so a busy moment on the machine falls on both alike;
``--together`` loads them at the same moment instead (two wrk at once), which pairs the
runs more tightly. The median of the run-by-run ratios is printed last.

    PYTHONPATH=bench .venv/bin/python -m portway_bench.cpu --workers 0 --repeat 7
    PYTHONPATH=bench .venv/bin/python -m portway_bench.cpu --src /tmp/base --src .
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from portway_bench import configs, wrk
from portway_bench.procs import Server, descendants, free_port
from portway_bench.targets import PORTWAY, configure_portway

TICK = os.sysconf("SC_CLK_TCK")


def tree_ticks(root: int) -> tuple[int, int]:
    """User and system ticks of ``root`` and its live descendants (fields 14 and 15)."""
    user = system = 0
    for pid in descendants(root) | {root}:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user += int(fields[11])  # utime, stime (after pid, comm, state)
        system += int(fields[12])
    return user, system


@dataclass
class Portway:
    """``portway serve`` from one source tree, configured with one proxy to the origin."""

    src: Path
    workers: int
    server: Server | None = None
    ports: dict[str, int] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)  # µs of CPU per request, per run
    rates: list[float] = field(default_factory=list)  # req/s, per run
    user: list[float] = field(default_factory=list)  # the user-space part of each run's µs

    def start(self, directory: Path, origin: int, index: int) -> None:
        data = directory / f"data-{index}"
        self.ports = {"http": free_port(), "api": free_port(), "origin": origin}
        argv = [
            str(PORTWAY), "serve", "--data-dir", str(data),
            "--http", f"127.0.0.1:{self.ports['http']}",
            "--api", f"127.0.0.1:{self.ports['api']}", "--https", "",
            "--workers", str(self.workers), "--log-level", "warning",
            # the origin is on loopback, which the production policy refuses; two trees
            # run at once, so neither takes the default metrics port
            "--backend-allow", "127.0.0.0/8", "--metrics", "",
        ]  # fmt: skip
        token = secrets.token_urlsafe(24)
        env = {"PORTWAY_ADMIN_TOKEN": token, "PYTHONPATH": str(self.src.resolve() / "src")}
        log = directory / f"portway-{index}.log"
        listen = [self.ports["http"], self.ports["api"]]
        self.server = Server(f"portway-{index}", argv, log, listen, env)
        self.server.start(timeout=120)
        configure_portway(self.ports, token, [configs.HOST])

    def pid(self) -> int:
        assert self.server is not None and self.server.proc is not None
        return self.server.proc.pid

    def run(self, directory: Path, load: wrk.Load) -> tuple[float, float, float]:
        """µs of CPU per request (all, user space), and req/s, of one wrk run."""
        user0, system0 = tree_ticks(self.pid())
        argv = wrk.command(directory, load, self.ports["http"])
        out = subprocess.run(argv, capture_output=True, text=True, timeout=load.duration + 60)
        user1, system1 = tree_ticks(self.pid())
        try:
            result = wrk.parse(out.stdout + out.stderr)
        except RuntimeError:
            result = None
        if result is None or result.errors or not result.requests:
            assert self.server is not None
            probe = httpx.get(
                f"http://127.0.0.1:{self.ports['http']}/", headers={"Host": configs.HOST}
            )
            raise RuntimeError(
                f"{self.src}: wrk: {out.stdout[-400:]}; now {probe.status_code} "
                f"{probe.text[:200]!r}; log: {self.server.tail(10)}"
            )
        per_request = 1e6 / TICK / result.requests
        user = (user1 - user0) * per_request
        return (user1 - user0 + system1 - system0) * per_request, user, result.rps

    def idle_ticks_per_s(self, seconds: float) -> float:
        before = sum(tree_ticks(self.pid()))
        time.sleep(seconds)
        return (sum(tree_ticks(self.pid())) - before) / seconds


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m portway_bench.cpu", description=__doc__)
    p.add_argument("--src", action="append", type=Path, help="source tree (repeatable)")
    p.add_argument("--workers", type=int, default=0, help="portway serve --workers")
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--threads", type=int, default=2, help="wrk -t")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    p.add_argument("--repeat", type=int, default=7, help="runs per source tree")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first")
    p.add_argument(
        "--together",
        action="store_true",
        help="load all trees at the same time (paired runs) instead of one after the other",
    )
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    trees = args.src or [Path(__file__).resolve().parents[2]]
    load = wrk.Load(args.connections, args.duration, args.threads)
    with tempfile.TemporaryDirectory(prefix="portway-cpu-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)  # nginx workers run as 'nobody'
        origin_port = free_port()
        conf = configs.write_origin(directory, origin_port)
        argv_ = ["nginx", "-p", str(directory), "-c", str(conf), "-g", "daemon off;"]
        origin = Server("origin", argv_, directory / "origin.log", [origin_port])
        origin.start()
        targets = [Portway(src, args.workers) for src in trees]
        try:
            for i, target in enumerate(targets):
                target.start(directory, origin_port, i)
                idle = target.idle_ticks_per_s(3.0)
                print(f"{target.src}: idle {idle:.1f} ticks/s", file=sys.stderr)
                wrk.run(directory, wrk.Load(args.connections, args.warmup), target.ports["http"])
            for rep in range(args.repeat):
                try:
                    if args.together:  # same moment, same machine state: a paired sample
                        with ThreadPoolExecutor(len(targets)) as pool:
                            results = list(pool.map(lambda t: t.run(directory, load), targets))
                    else:  # A B, then B A: neither tree always runs first
                        order = targets if rep % 2 == 0 else targets[::-1]
                        ran = {id(t): t.run(directory, load) for t in order}
                        results = [ran[id(t)] for t in targets]
                except RuntimeError as exc:  # an error response: the whole pair is dropped
                    print(f"#{rep + 1} dropped: {exc}", flush=True)
                    continue
                for target, (us, user, rps) in zip(targets, results, strict=True):
                    target.samples.append(us)
                    target.user.append(user)
                    target.rates.append(rps)
                    print(
                        f"#{rep + 1} {target.src}: {us:.1f} µs/req ({user:.1f} user) "
                        f"{rps:.0f} req/s",
                        flush=True,
                    )
        finally:
            for target in targets:
                if target.server is not None:
                    target.server.stop()
            origin.stop()
    for target in targets:
        print(
            f"{target.src}: median {statistics.median(target.samples):.1f} µs CPU/request "
            f"(runs: {', '.join(f'{s:.1f}' for s in target.samples)}); "
            f"median {statistics.median(target.rates):.0f} req/s; "
            f"user space: median {statistics.median(target.user):.1f} µs"
        )
    first = targets[0]
    for target in targets[1:]:  # run by run, so slow moments cancel out
        ratios = [b / a for a, b in zip(first.samples, target.samples, strict=True)]
        print(f"{target.src} / {first.src}: median ratio {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
