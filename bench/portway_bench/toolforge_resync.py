"""A Kubernetes resync of many tools (issue 9): how long the store writes take.

    cd bench && ../.venv/bin/python -m portway_bench.toolforge_resync [--tools 10000] [--batch N]

In this process, on a SQLite store in a temporary directory (the default node's store),
through the Kubernetes source's own ``ServiceToolRoutes.resync``:

1. the first list: ``--tools`` tools the store does not have yet;
2. an idle relist: the same list again (nothing changes, nothing is written);
3. a relist where every tenth Service moved to another port and every twentieth is gone.

Each figure is wall time of the resync call and the number of change-log rows it wrote.
``--batch N`` writes N tools per transaction instead of ``RESYNC_BATCH`` (``--batch 1``
is the old one transaction per tool, for a comparison under the same load).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from portway.model import TlsSettings
from portway.model.backend_policy import BackendPolicy
from portway.protocol.registration import Destination
from portway.service import Service
from portway.service.tools import RESYNC_BATCH
from portway.sources.tool_service import ServiceToolRoutes
from portway.sources.tools import ToolRoute
from portway.store import open_store

DOMAIN = "toolforge.org"
POLICY = BackendPolicy.build(allow=["10.0.0.0/8"])


def services(count: int, *, moved: int = 0, gone: int = 0) -> list[ToolRoute]:
    """``count`` Services as the watcher sees them; every ``moved``-th on port 8001,
    every ``gone``-th left out (0: none)."""
    out = []
    for i in range(count):
        if gone and i % gone == 0:
            continue
        port = 8001 if moved and i % moved == 0 else 8000
        host = f"10.{i // 65536}.{i // 256 % 256}.{i % 256 or 1}"
        destination = Destination(scheme="http", host=host, port=port, text=f"http://{host}:{port}")
        out.append(ToolRoute(tool=f"tool{i:05d}", pattern=".*", destination=destination))
    return out


class _Batched:
    """``ServiceToolRoutes.resync`` with another batch size (the service's argument)."""

    def __init__(self, service: Service, routes: ServiceToolRoutes, batch: int) -> None:
        self._service, self._routes, self._batch = service, routes, batch

    def resync(self, wanted: list[ToolRoute]) -> None:
        specs = [self._routes._spec(route) for route in wanted]
        actor = self._routes._actor
        self._service.resync_tool_routes(actor, specs, tls=TlsSettings(), batch=self._batch)


def _timed(routes: Any, store: Any, wanted: list[ToolRoute]) -> dict[str, Any]:
    before = store.read(lambda r: r.current_revision())
    started = time.perf_counter()
    routes.resync(wanted)
    took = time.perf_counter() - started
    after = store.read(lambda r: r.current_revision())
    return {"seconds": round(took, 3), "changes": after - before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tools", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=RESYNC_BATCH)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'portway.db'}")
        service = Service(store, backend_policy=POLICY)
        plain = ServiceToolRoutes(
            service, source="kubernetes", canonical_domain=DOMAIN, tls=TlsSettings()
        )
        routes = plain if args.batch == RESYNC_BATCH else _Batched(service, plain, args.batch)
        result = {
            "tools": args.tools,
            "batch": args.batch,
            "first_list": _timed(routes, store, services(args.tools)),
            "idle_relist": _timed(routes, store, services(args.tools)),
            "relist_10pct_moved_5pct_gone": _timed(
                routes, store, services(args.tools, moved=10, gone=20)
            ),
        }
        store.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
