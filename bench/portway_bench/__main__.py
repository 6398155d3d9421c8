"""Driver: ``python -m portway_bench`` (bench/run.sh sets it up). See bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import httpx

from portway_bench import churn, configs, idle, report, wrk
from portway_bench.procs import Server, free_port
from portway_bench.targets import Target, standard_targets

SCENARIOS = ("http-c50", "http-c200", "tls-c50", "tls-handshake", "64k-c50", "routes", "churn")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__)
    env = os.environ.get
    p.add_argument("--duration", type=float, default=float(env("BENCH_DURATION", "5")))
    p.add_argument("--repeat", type=int, default=int(env("BENCH_REPEAT", "3")))
    p.add_argument("--threads", type=int, default=int(env("BENCH_THREADS", "2")), help="wrk -t")
    p.add_argument("--routes", type=int, default=int(env("BENCH_ROUTES", "100000")))
    p.add_argument("--idle-connections", type=int, default=10000)
    p.add_argument("--churn-rate", type=float, default=100.0, help="API changes per second")
    p.add_argument("--churn-seconds", type=float, default=30.0)
    p.add_argument(
        "--portway-setup-budget",
        type=float,
        default=float(env("BENCH_PORTWAY_SETUP_BUDGET", "600")),
        help="seconds allowed for creating the route-scale proxies through Portway's API",
    )
    p.add_argument("--targets", nargs="*", help="names or kinds, e.g. nginx portway-w1")
    p.add_argument("--scenarios", nargs="*", choices=SCENARIOS, default=list(SCENARIOS))
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "results")
    p.add_argument("--quick", action="store_true", help="1 s runs, 1 repetition, small tables")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.repeat, args.routes = 1.0, 1, min(args.routes, 1000)
        args.churn_seconds, args.idle_connections = 3.0, min(args.idle_connections, 1000)
    return args


def loads(args: argparse.Namespace) -> dict[str, wrk.Load]:
    d, t = args.duration, args.threads
    return {
        "http-c50": wrk.Load(50, d, t),
        "http-c200": wrk.Load(200, d, t),
        "tls-c50": wrk.Load(50, d, t, tls=True),
        "tls-handshake": wrk.Load(50, d, t, tls=True, close=True),
        "64k-c50": wrk.Load(50, d, t, path="/64k"),
    }


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def start_all(
    targets: list[Target], directory: Path, origin: int, hosts: list[str], res: report.Results
) -> list[Target]:
    up = []
    for target in targets:
        log(f"starting {target.name} with {len(hosts)} host(s)")
        try:
            target.start(directory, origin, hosts)
        except Exception as exc:  # any failure to start or configure skips just this target
            res.skipped[f"{target.name} ({len(hosts)} hosts)"] = f"skipped: {exc}"
            log(f"SKIP {target.name}: {exc}")
            continue
        up.append(target)
        probe(target, hosts[0], res)
    return up


def probe(target: Target, host: str, res: report.Results) -> None:
    """One request per listener before measuring: a target that answers an error status
    would otherwise show fast but meaningless figures (wrk counts them only as errors)."""
    schemes = ["http", "https"] if target.tls else ["http"]
    for scheme in schemes:
        url = f"{scheme}://127.0.0.1:{target.ports[scheme]}/"
        try:
            status: int | str = httpx.get(url, headers={"Host": host}, verify=False).status_code
        except httpx.HTTPError as exc:
            status = f"{type(exc).__name__}: {exc}"
        res.extra.setdefault("probe", {}).setdefault(target.name, {})[scheme] = status
        if status != 200:
            log(f"WARNING {target.name} answers {status} on {scheme} for Host {host}")


def interleaved(
    name: str, load: wrk.Load, targets: list[Target], args: argparse.Namespace,
    directory: Path, res: report.Results,
) -> None:  # fmt: skip
    """Repetition-major order, so a slow minute on the machine hits every target alike."""
    runnable = [t for t in targets if t.tls or not load.tls]
    for rep in range(args.repeat):
        for target in runnable:
            port = target.ports["https" if load.tls else "http"]
            try:
                result = wrk.run(directory, load, port)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                log(f"{name} {target.name}: wrk failed: {exc}")
                continue
            res.add(name, target.name, result)
            log(
                f"{name} {target.name} #{rep + 1}: {result.rps:.0f} req/s "
                f"p50 {result.p50_ms:.2f} ms p99 {result.p99_ms:.2f} ms errors {result.errors}"
            )


def measure_memory(targets: list[Target], state: str, res: report.Results) -> None:
    for target in targets:
        res.memory.setdefault(target.name, {})[state] = target.memory().as_dict()


def idle_memory(targets: list[Target], count: int, res: report.Results) -> None:
    for target in targets:
        assert target.server is not None
        mem, opened = idle.memory_with_idle_connections(target.server, target.ports["http"], count)
        entry = mem.as_dict() | {"connections": opened}
        res.memory.setdefault(target.name, {})[f"{count} idle conns"] = entry
        log(f"{target.name}: {opened} idle connections, RSS {entry['rss_mib']} MiB")


def run_churn(
    targets: list[Target], args: argparse.Namespace, directory: Path, res: report.Results
) -> None:
    for target in (t for t in targets if t.kind == "portway"):
        load = wrk.Load(50, args.churn_seconds + 2, args.threads)
        box: dict[str, wrk.Result] = {}

        def load_in_background(
            box: dict[str, wrk.Result] = box,
            load: wrk.Load = load,
            port: int = target.ports["http"],
        ) -> None:
            box["r"] = wrk.run(directory, load, port)

        thread = threading.Thread(target=load_in_background)
        thread.start()
        stats = asyncio.run(
            churn.churn(target.ports, target.token, args.churn_rate, args.churn_seconds)
        )
        thread.join()
        if "r" in box:
            stats["wrk"] = box["r"].as_dict()
        res.extra.setdefault("churn", {})[target.name] = stats
        log(f"churn {target.name}: {stats}")


def run_routes(
    args: argparse.Namespace, directory: Path, origin: int, res: report.Results,
    save: Callable[[], None],
) -> None:  # fmt: skip
    for count in (10, args.routes):
        hosts = [f"p{i}.{configs.HOST}" for i in range(1, count + 1)]
        fresh = standard_targets(args.targets, args.portway_setup_budget)
        try:
            up = start_all(fresh, directory, origin, hosts, res)
            res.extra.setdefault("routes_setup_s", {})[str(count)] = {
                t.name: round(t.setup_s, 2) for t in up
            }
            measure_memory(up, f"{count} proxies", res)
            load = wrk.Load(50, args.duration, args.threads, hosts=count)
            interleaved(f"routes-{count}", load, up, args, directory, res)
            save()
        finally:
            for target in fresh:
                target.stop()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    options = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    options["fd_limit"] = idle.raise_fd_limit()
    options["loads"] = {k: asdict(v) for k, v in loads(args).items()}
    res = report.Results()
    path = report.json_path(args.out)

    def save() -> None:
        report.write_json(res, path, options)

    try:
        with tempfile.TemporaryDirectory(prefix="portway-bench-") as tmp:
            run_all(args, Path(tmp), res, save)
    except KeyboardInterrupt:
        log("interrupted: the figures so far are in the JSON file")
    save()
    print(report.table(res))
    print(report.memory_table(res))
    print(report.extra_text(res))
    for name, reason in res.skipped.items():
        print(f"{name}: {reason}")
    print(f"\nresults: {path}")
    return 0


def start_origin(directory: Path) -> tuple[Server, int]:
    """The TLS certificate and the nginx origin every target proxies to, and its port."""
    # nginx workers run as 'nobody' and must read the certificate and origin files.
    directory.chmod(0o755)
    configs.write_certificate(directory)
    origin_port = free_port()
    conf = configs.write_origin(directory, origin_port)
    argv = ["nginx", "-p", str(directory), "-c", str(conf), "-g", "daemon off;"]
    origin = Server("origin", argv, directory / "origin.log", [origin_port])
    origin.start()
    return origin, origin_port


def run_all(
    args: argparse.Namespace, directory: Path, res: report.Results, save: Callable[[], None]
) -> None:
    origin, origin_port = start_origin(directory)
    targets = standard_targets(args.targets, args.portway_setup_budget)
    res.peers = {t.name: t.peer for t in targets}
    try:
        up = start_all(targets, directory, origin_port, [configs.HOST], res)
        for target in targets:
            if target.note:
                res.extra.setdefault("notes", {})[target.name] = target.note
        measure_memory(up, "idle", res)
        for name, load in loads(args).items():
            if name in args.scenarios:
                interleaved(name, load, up, args, directory, res)
                save()
        if args.idle_connections:
            idle_memory(up, args.idle_connections, res)
        if "churn" in args.scenarios:
            run_churn(up, args, directory, res)
        save()
        for target in up:
            target.stop()
        if "routes" in args.scenarios:
            run_routes(args, directory, origin_port, res, save)
    finally:
        for target in targets:
            target.stop()
        origin.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
