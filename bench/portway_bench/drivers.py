"""Issue 11 §5: nginx and HAProxy driven by Portway beside their plain twins, and changes
under load.

    PYTHONPATH=bench .venv/bin/python -m portway_bench.drivers [--duration 5] [--repeat 1]
        [--changes 1000] [--plain-reloads 100]

1. **Throughput.** In one run, against one origin: plain nginx (``worker_processes
   auto``), ``portway serve --dataplane nginx`` (the driver's nginx, also ``auto``),
   plain HAProxy (``nbthread 2``) and ``portway serve --dataplane haproxy`` (HAProxy's
   default, one thread per CPU), on ``http-c50`` and ``tls-c50`` (keep-alive), runs
   interleaved. Each driven plane's ratio is to its plain twin.
2. **Hitless.** For each driven plane: wrk keeps 50 connections busy on ``bench.test``
   while ``--changes`` API changes run on other proxies, four at a time, in groups of
   four (create ``c<i>.bench.test`` and wait until it is routed, add a backend, change
   that backend's weight, delete the proxy). Reported: wrk's failed requests (non-2xx
   and socket errors), the reloads the plane took (``portway_dataplane_reloads_total``)
   and change→routed p50/p99 for the creates (API acknowledged → first 200).
3. **Contrast.** The plain twins under the same wrk load, reloaded ``--plain-reloads``
   times every ``--plain-interval`` s the way operators do it without Portway: SIGHUP to
   nginx's master (``nginx -s reload``) and SIGUSR2 to an HAProxy master-worker started
   without ``expose-fd listeners`` (``systemctl reload haproxy``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from portway_bench import configs, report, wrk
from portway_bench.__main__ import interleaved, log, start_all, start_origin
from portway_bench.procs import Server, free_port
from portway_bench.targets import Target

HOST = configs.HOST
GROUP = 4  # API changes per group: create, add a backend, change its weight, delete
PARTS = ("throughput", "hitless", "plain-reloads")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m portway_bench.drivers", description=__doc__)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    p.add_argument("--repeat", type=int, default=1, help="runs per target and load")
    p.add_argument("--threads", type=int, default=2, help="wrk -t")
    p.add_argument("--changes", type=int, default=1000, help="API changes per driven plane")
    p.add_argument("--parallel", type=int, default=4, help="change groups in flight")
    p.add_argument("--plain-reloads", type=int, default=100)
    p.add_argument("--plain-interval", type=float, default=0.05, help="seconds between reloads")
    p.add_argument(
        "--parts", nargs="*", choices=PARTS, default=list(PARTS), help="what to run (all)"
    )
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "results")
    return p.parse_args(argv)


def targets() -> list[Target]:
    return [
        Target("nginx-auto", "nginx", 0, "nginx-auto"),
        Target("pw-nginx", "portway", 0, "nginx-auto", dataplane="nginx"),
        Target("haproxy-t2", "haproxy", 2, "haproxy-t2"),
        Target("pw-haproxy", "portway", 0, "haproxy-t2", dataplane="haproxy"),
    ]


# -- load in the background -------------------------------------------------------------


class Background:
    """wrk in back-to-back runs of ``duration`` s on one port until ``stop``; the sums."""

    def __init__(self, directory: Path, port: int, duration: float, threads: int) -> None:
        self._args = (directory, wrk.Load(50, duration, threads), port)
        self.results: list[wrk.Result] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Background:
        self._thread.start()
        time.sleep(0.5)  # wrk's connections are open before the first change
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.results.append(wrk.run(*self._args))

    def totals(self) -> dict[str, float]:
        requests = sum(r.requests for r in self.results)
        seconds = sum(r.duration_s for r in self.results)
        return {
            "requests": requests,
            "failed": sum(r.errors for r in self.results),
            "seconds": round(seconds, 1),
            "rps": round(requests / seconds, 1) if seconds else 0.0,
            "p99_ms_worst_run": max((r.p99_ms for r in self.results), default=0.0),
        }


# -- changes through the API -------------------------------------------------------------


async def _group(
    api: httpx.AsyncClient, plane: httpx.AsyncClient, i: int, origin: int
) -> tuple[int, float | None]:
    """One group of changes; the number that the API acknowledged and the create's
    change→routed seconds (None: never routed within 20 s)."""
    host = f"c{i}.{HOST}"
    member = {"address": "127.0.0.1", "port": origin}
    r = await api.post(
        "/v1/bench/proxies", json={"proxy": {"hostname": host, "backends": [member]}}
    )
    if r.is_error:
        return 0, None
    acked, proxy = time.monotonic(), r.json()["proxy"]
    routed = None
    while time.monotonic() - acked < 20:
        try:
            if (await plane.get("/", headers={"Host": host})).status_code == 200:
                routed = time.monotonic() - acked
                break
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.002)
    done = 1
    path = f"/v1/bench/proxies/{proxy['id']}"
    added = await api.post(
        f"{path}/backends", json={"backend": {"address": "127.0.0.2", "port": origin}}
    )
    done += not added.is_error
    if not added.is_error:
        bid = added.json()["backend"]["id"]
        weighed = await api.patch(f"{path}/backends/{bid}", json={"backend": {"weight": 5}})
        done += not weighed.is_error
    done += not (await api.delete(path)).is_error
    return done, routed


async def changes(target: Target, count: int, parallel: int) -> dict[str, Any]:
    ports, origin = target.ports, target.ports["origin"]
    headers = {"X-Auth-Token": target.token}
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['api']}", headers=headers) as api,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['http']}", timeout=2) as plane,
    ):
        queue = iter(range(count // GROUP))
        out: list[tuple[int, float | None]] = []

        async def worker() -> None:
            for i in queue:
                out.append(await _group(api, plane, i, origin))

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(parallel)))
        elapsed = time.monotonic() - started
    latencies = sorted(s for _, s in out if s is not None)
    return {
        "changes": sum(n for n, _ in out),
        "seconds": round(elapsed, 1),
        "not_routed": sum(1 for _, s in out if s is None),
        "routed_p50_ms": _ms(statistics.median(latencies)) if latencies else None,
        "routed_p99_ms": _ms(latencies[int(0.99 * (len(latencies) - 1))]) if latencies else None,
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def reloads(target: Target) -> int:
    text = httpx.get(f"http://127.0.0.1:{target.ports['metrics']}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("portway_dataplane_reloads_total{"):
            return int(float(line.split()[-1]))
    raise RuntimeError(f"{target.name}: no portway_dataplane_reloads_total in /metrics")


def hitless(target: Target, args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    before = reloads(target)
    with Background(directory, target.ports["http"], args.duration, args.threads) as load:
        figures = asyncio.run(changes(target, args.changes, args.parallel))
    figures["reloads"] = reloads(target) - before
    return figures | {"wrk": load.totals()}


# -- plain reloads -----------------------------------------------------------------------


def plain_reloads(
    name: str, pid: int, sig: signal.Signals, port: int, args: argparse.Namespace, directory: Path
) -> dict[str, Any]:
    with Background(directory, port, args.duration, args.threads) as load:
        for _ in range(args.plain_reloads):
            os.kill(pid, sig)
            time.sleep(args.plain_interval)
        time.sleep(1.0)  # the last reload settles under load
    log(f"{name}: {args.plain_reloads} reloads")
    return {"reloads": args.plain_reloads, "wrk": load.totals()}


def haproxy_master_worker(directory: Path, origin: int) -> tuple[Server, int]:
    """The plain HAProxy config in master-worker mode (``-W``), as a packaged HAProxy
    runs; its master reloads on SIGUSR2."""
    ports = {"http": free_port(), "https": free_port(), "origin": origin}
    conf = configs.write_haproxy(directory, "haproxy-mw", 2, ports, [HOST])
    argv = ["haproxy", "-W", "-db", "-f", str(conf)]
    server = Server("haproxy-mw", argv, directory / "haproxy-mw.log", [ports["http"]])
    server.start(timeout=60)
    return server, ports["http"]


# -- the run -----------------------------------------------------------------------------


def run(args: argparse.Namespace, directory: Path, res: report.Results) -> None:
    origin, origin_port = start_origin(directory)
    up: list[Target] = []
    try:
        all_targets = targets()
        res.peers = {t.name: t.peer for t in all_targets}
        up = start_all(all_targets, directory, origin_port, [HOST], res)
        for name, load in (
            ("http-c50", wrk.Load(50, args.duration, args.threads)),
            ("tls-c50", wrk.Load(50, args.duration, args.threads, tls=True)),
        ):
            if "throughput" in args.parts:
                interleaved(name, load, up, args, directory, res)
        driven = [t for t in up if t.kind == "portway" and "hitless" in args.parts]
        for target in driven:
            figures = hitless(target, args, directory)
            res.extra.setdefault("hitless", {})[target.name] = figures
            log(f"hitless {target.name}: {figures}")
        if "plain-reloads" in args.parts:
            run_plain(up, args, directory, origin_port, res)
    finally:
        for target in up:
            target.stop()
        origin.stop()


def run_plain(
    up: list[Target], args: argparse.Namespace, directory: Path, origin: int, res: report.Results
) -> None:
    """Plain nginx's master SIGHUPed, a plain HAProxy master-worker SIGUSR2ed, under load."""
    figures = res.extra.setdefault("hitless", {})
    nginx = next((t for t in up if t.name == "nginx-auto"), None)
    if nginx is not None and nginx.server is not None and nginx.server.proc is not None:
        pid, port = nginx.server.proc.pid, nginx.ports["http"]
        figures["nginx -s reload"] = plain_reloads(
            "nginx", pid, signal.SIGHUP, port, args, directory
        )
    server, port = haproxy_master_worker(directory, origin)
    try:
        assert server.proc is not None
        pid = server.proc.pid
        figures["haproxy reload"] = plain_reloads(
            "haproxy", pid, signal.SIGUSR2, port, args, directory
        )
    finally:
        server.stop()


def hitless_table(res: report.Results) -> str:
    lines = [
        f"{'plane':<18}{'changes':>8}{'reloads':>8}{'requests':>10}{'failed':>8}"
        f"{'routed p50 ms':>15}{'routed p99 ms':>15}"
    ]
    for name, f in res.extra.get("hitless", {}).items():
        lines.append(
            f"{name:<18}{f.get('changes', '-')!s:>8}{f['reloads']:>8}{f['wrk']['requests']:>10}"
            f"{f['wrk']['failed']:>8}{f.get('routed_p50_ms', '-')!s:>15}"
            f"{f.get('routed_p99_ms', '-')!s:>15}"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    res = report.Results()
    with tempfile.TemporaryDirectory(prefix="portway-bench-drivers-") as tmp:
        run(args, Path(tmp), res)
    path = report.json_path(args.out).with_name(f"drivers-{int(time.time())}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"options": {k: str(v) for k, v in vars(args).items()}, "runs": {}}
    for scenario, by_target in res.runs.items():
        data["runs"][scenario] = {t: [asdict(r) for r in rs] for t, rs in by_target.items()}
    data["extra"] = res.extra
    path.write_text(json.dumps(data, indent=2))
    print(report.table(res))
    print(hitless_table(res))
    for name, reason in res.skipped.items():
        print(f"{name}: {reason}")
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
