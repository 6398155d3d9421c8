"""Cache hits: Portway's HTTP cache against nginx ``proxy_cache``, in the same run.

    PYTHONPATH=bench .venv/bin/python -m portway_bench.cache_hits [--duration S] [--repeat N]

Four targets answer ``GET /`` of the standard origin (36 bytes) with 50 keep-alive
connections: nginx (1 worker) without and with ``proxy_cache`` (``proxy_cache_valid 200
1h``), and Portway (``--workers 1``) without and then with ``cache.enabled`` (and
``default_ttl`` 3600, since the origin sends no freshness of its own: the same rule as
nginx's ``proxy_cache_valid``). The nginx runs are interleaved with both Portway
phases, so each ratio compares figures taken minutes apart at most. Every cached run is
checked first: one request must come back a hit (``Cache-Status``/``X-Cache-Status``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from portway_bench import configs, wrk
from portway_bench.procs import Server, free_port
from portway_bench.targets import Target

CACHE_LINES = (
    "        location / {\n            proxy_cache bench;\n"
    "            proxy_cache_valid 200 1h;\n"
    "            add_header X-Cache-Status $upstream_cache_status;\n"
)


# Labels of the runs after Portway's cache was switched on.
SECOND_PHASE = {
    "portway-w1": "portway-w1-cache",
    "nginx-w1": "nginx-w1 (phase 2)",
    "nginx-w1-cache": "nginx-w1-cache (phase 2)",
}


def _nginx_cached(directory: Path, origin: int) -> Target:
    """nginx-w1 with proxy_cache: the standard config plus a cache zone and its rules."""
    target = Target("nginx-w1-cache", "nginx", 1, "nginx-w1")
    target.start(directory, origin, [configs.HOST])  # writes and starts the plain config
    target.stop()
    conf = directory / f"{target.name}.conf"
    cache_dir = directory / "nginx-cache"
    cache_dir.mkdir(mode=0o777, exist_ok=True)
    cache_dir.chmod(0o777)  # nginx's workers run as nobody
    text = conf.read_text()
    text = text.replace(
        "http {\n",
        f"http {{\n    proxy_cache_path {cache_dir} levels=1:2 keys_zone=bench:10m "
        "max_size=64m inactive=1h;\n",
        1,
    )
    text = text.replace("        location / {\n", CACHE_LINES, 1)
    conf.write_text(text)
    argv = ["nginx", "-p", str(directory), "-c", str(conf), "-g", "daemon off;"]
    target.server = Server(
        target.name, argv, directory / f"{target.name}.log", [target.ports["http"]]
    )
    target.server.start()
    return target


def _enable_portway_cache(target: Target) -> None:
    api = f"http://127.0.0.1:{target.ports['api']}"
    headers = {"X-Auth-Token": target.token}
    with httpx.Client(base_url=api, headers=headers, timeout=30) as client:
        found = client.get("/v1/bench/proxies", params={"hostname": configs.HOST}).json()
        proxy_id = found["proxies"][0]["id"]
        body = {"proxy": {"cache": {"enabled": True, "default_ttl": 3600}}}
        client.patch(f"/v1/bench/proxies/{proxy_id}", json=body).raise_for_status()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if "hit" in _cache_word(target):
            return
        time.sleep(0.1)
    raise RuntimeError("portway never answered a cache hit after cache.enabled")


def _cache_word(target: Target) -> str:
    response = httpx.get(
        f"http://127.0.0.1:{target.ports['http']}/", headers={"Host": configs.HOST}
    )
    return response.headers.get("cache-status") or response.headers.get("x-cache-status", "")


def _measure(
    directory: Path,
    targets: list[Target],
    load: wrk.Load,
    runs: dict[str, list[wrk.Result]],
    name: dict[str, str],
) -> None:
    for target in targets:
        result = wrk.run(directory, load, target.ports["http"])
        label = name.get(target.name, target.name)
        runs.setdefault(label, []).append(result)
        print(
            f"bench: {label}: {result.rps:.0f} req/s p50 {result.p50_ms:.2f} ms "
            f"p99 {result.p99_ms:.2f} ms errors {result.errors}",
            file=sys.stderr,
            flush=True,
        )


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="portway_bench.cache_hits")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args(argv)
    load = wrk.Load(args.connections, args.duration, args.threads)
    runs: dict[str, list[wrk.Result]] = {}
    with tempfile.TemporaryDirectory(prefix="portway-cache-bench-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)
        configs.write_certificate(directory)
        origin_port = free_port()
        conf = configs.write_origin(directory, origin_port)
        origin = Server(
            "origin",
            ["nginx", "-p", str(directory), "-c", str(conf), "-g", "daemon off;"],
            directory / "origin.log",
            [origin_port],
        )
        origin.start()
        plain = Target("nginx-w1", "nginx", 1, "nginx-w1")
        portway = Target("portway-w1", "portway", 1, "nginx-w1")
        started: list[Target] = []
        try:
            plain.start(directory, origin_port, [configs.HOST])
            started.append(plain)
            cached = _nginx_cached(directory, origin_port)
            started.append(cached)
            portway.start(directory, origin_port, [configs.HOST])
            started.append(portway)
            _cache_word(cached)  # the first request fills nginx's cache
            if "HIT" not in _cache_word(cached):
                raise RuntimeError("nginx proxy_cache never answered HIT")
            for _ in range(args.repeat):
                _measure(directory, [plain, cached, portway], load, runs, {})
            _enable_portway_cache(portway)
            for _ in range(args.repeat):
                _measure(directory, [plain, cached, portway], load, runs, SECOND_PHASE)
        finally:
            for target in started:
                target.stop()
            origin.stop()
    summary = {
        name: {
            "rps": statistics.median(r.rps for r in results),
            "p50_ms": statistics.median(r.p50_ms for r in results),
            "p99_ms": statistics.median(r.p99_ms for r in results),
            "errors": sum(r.errors for r in results),
            "runs": len(results),
        }
        for name, results in runs.items()
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"cache-hits-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({"load": vars(load), "summary": summary}, indent=2, default=str))
    for name, figures in summary.items():
        print(
            f"{name:24} {figures['rps']:>9.0f} req/s  p50 {figures['p50_ms']:.2f} ms  "
            f"p99 {figures['p99_ms']:.2f} ms  errors {figures['errors']}"
        )
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
