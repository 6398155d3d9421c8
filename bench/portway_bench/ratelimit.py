"""Client rate limits under load (issue 12): does the limit hold with ``--workers N``?

    cd bench && ../.venv/bin/python -m portway_bench.ratelimit [--workers 2] [--rate 500]
        [--burst 50] [--duration 10] [--connections 50] [--repeat 3]

Starts the nginx origin and ``portway serve --workers N`` as ``bench/run.sh`` does, sets
``limits.rate``/``burst`` on proxy ``bench.test``, and runs wrk from one client address
(127.0.0.1, ``--connections`` keep-alive connections, which the kernel spreads over the
workers). Requests that passed are wrk's requests minus its non-2xx answers (the 429s);
the figure is the passed rate beyond the first burst, ``(passed - burst) / duration``,
against ``--rate``. Each worker applies 1/N of the rate, so the node's total should
stay within 10% of it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from portway_bench import configs, wrk
from portway_bench.procs import Server, free_port
from portway_bench.targets import Target


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="portway_bench.ratelimit")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--rate", type=float, default=500.0, help="limits.rate, requests a second")
    p.add_argument("--burst", type=int, default=50)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--repeat", type=int, default=3)
    return p.parse_args(argv)


def limit(target: Target, rate: float, burst: int) -> None:
    body = {"proxy": {"limits": {"rate": rate, "burst": burst}}}
    api = f"http://127.0.0.1:{target.ports['api']}"
    with httpx.Client(base_url=api, headers={"X-Auth-Token": target.token}) as client:
        response = client.patch(f"/v1/bench/proxies/{configs.HOST}", json=body)
        response.raise_for_status()


def one_run(directory: Path, target: Target, load: wrk.Load) -> dict[str, float]:
    argv = wrk.command(directory, load, target.ports["http"])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=load.duration + 60)
    line = next(x for x in (proc.stdout + proc.stderr).splitlines() if x.startswith(wrk.MARK))
    data = json.loads(line[len(wrk.MARK) :])
    refused = data["status"]  # non-2xx/3xx answers: the 429s
    socket_errors = sum(data[k] for k in ("connect", "read", "write", "timeout"))
    return {
        "requests": data["requests"],
        "refused": refused,
        "passed": data["requests"] - refused,
        "socket_errors": socket_errors,
        "duration_s": data["duration_us"] / 1e6,
    }


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="portway-bench-rl-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)
        origin_port = free_port()
        conf = configs.write_origin(directory, origin_port)
        nginx = ["nginx", "-p", str(directory), "-c", str(conf), "-g", "daemon off;"]
        origin = Server("origin", nginx, directory / "origin.log", [origin_port])
        origin.start()
        name = f"portway-w{args.workers}"
        target = Target(name, "portway", args.workers, "nginx-auto", tls=False)
        try:
            target.start(directory, origin_port, [configs.HOST])
            limit(target, args.rate, args.burst)
            load = wrk.Load(connections=args.connections, duration=args.duration)
            runs = []
            for _ in range(args.repeat):
                time.sleep(1 + args.burst / args.rate)  # every bucket full again
                runs.append(one_run(directory, target, load))
                print(json.dumps(runs[-1]), file=sys.stderr)
        finally:
            target.stop()
            origin.stop()
    rates = [(r["passed"] - args.burst) / r["duration_s"] for r in runs]
    median = statistics.median(rates)
    summary = {
        "workers": args.workers,
        "rate": args.rate,
        "burst": args.burst,
        "connections": args.connections,
        "duration": args.duration,
        "passed_rate_per_run": [round(r, 1) for r in rates],
        "passed_rate_median": round(median, 1),
        "deviation_percent": round((median / args.rate - 1) * 100, 1),
        "runs": runs,
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
