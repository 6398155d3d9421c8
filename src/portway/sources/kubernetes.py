"""Kubernetes Services as Toolforge tool routes (the kube2proxy replacement).

The watcher lists the Services that carry the webservice label, makes this source's
routes exactly that list (a full resync), then watches from the list's
``resourceVersion``:

- ``ADDED``/``MODIFIED``: the tool named like the Service goes to
  ``http://<clusterIP>:<first port>`` with the route ``/<proxy-path label>.*``, or ``.*``
  when the label is absent (compat.md §2);
- ``DELETED``: that route is removed;
- ``BOOKMARK``: only the resourceVersion moves on;
- ``ERROR`` with 410 Gone (the version is too old) → list again, which resyncs.

A list is one ``ToolRoutes.resync``: the service writes the tools that changed a few
hundred per transaction (``service.tools.RESYNC_BATCH``), so a first list of 10 000
Services is tens of store commits, not 10 000. Services are always plain-HTTP backends
(``http://``): the cluster's Service network speaks HTTP to the ingress, not TLS.

A dropped stream resumes from the last version seen; API and network errors back off
(doubling, up to ``max_backoff``) and retry for as long as the node runs. The routes
already in force stay in force meanwhile: nothing is removed because the API is down.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from portway.errors import (
    ConflictError,
    ForbiddenError,
    NotFoundError,
    PortwayError,
    ValidationError,
)
from portway.protocol.registration import Destination
from portway.sources.base import DOWN, STARTING, UP
from portway.sources.tools import ToolRoute, ToolRoutes

log = logging.getLogger("portway.sources.kubernetes")

PROXY_PATH_LABEL = "toollabs-proxy-path"
# Refusals of one route (bad name, quota, a name another project owns): skip that route.
_REFUSALS = (ValidationError, ConflictError, ForbiddenError, NotFoundError)


@dataclass(frozen=True, kw_only=True, slots=True)
class KubernetesSettings:
    api_url: str
    token_file: Path | None = None
    ca_file: Path | None = None
    label_selector: str = "tools.wmflabs.org/webservice=true"
    watch_timeout: int = 290  # seconds the API server keeps one watch open
    max_backoff: float = 30.0


class Gone(PortwayError):
    """The watched resourceVersion is too old (HTTP 410): list again."""


def service_route(service: Mapping[str, Any]) -> ToolRoute | None:
    """The route a Service object stands for, or None when it cannot be routed."""
    metadata = service.get("metadata") or {}
    spec = service.get("spec") or {}
    name = metadata.get("name")
    cluster_ip = spec.get("clusterIP")
    ports = spec.get("ports") or []
    if not isinstance(name, str) or not name:
        return None
    if not isinstance(cluster_ip, str) or cluster_ip in ("", "None") or not ports:
        return None  # headless or portless Services have nothing to proxy to
    port = ports[0].get("port") if isinstance(ports[0], Mapping) else None
    if not isinstance(port, int) or not 1 <= port <= 65535:
        return None
    host = f"[{cluster_ip}]" if ":" in cluster_ip else cluster_ip
    labels = metadata.get("labels") or {}
    path = labels.get(PROXY_PATH_LABEL)
    pattern = f"/{path}.*" if isinstance(path, str) and path else ".*"
    destination = Destination(
        scheme="http", host=cluster_ip, port=port, text=f"http://{host}:{port}"
    )
    return ToolRoute(tool=name, pattern=pattern, destination=destination)


class KubernetesWatcher:
    """List, resync, watch; ``state`` is "up" while a list or watch is healthy."""

    name = "kubernetes"

    def __init__(self, routes: ToolRoutes, settings: KubernetesSettings) -> None:
        self._routes = routes
        self._settings = settings
        self._current: dict[str, ToolRoute] = {}  # tool → the route this source made
        self.state = STARTING
        self.outcomes: dict[str, int] = {}  # "applied", "refused", "ignored" → count

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with self._client() as client:
                    version = await self._list(client)
                    backoff = 0.5
                    while True:
                        version = await self._watch(client, version)
            except Gone:
                log.info("watch version expired (410): listing again")
                continue
            except (httpx.HTTPError, PortwayError, OSError, ValueError) as exc:
                self.state = DOWN
                log.warning("Kubernetes API: %s; retrying in %.1fs", _reason(exc), backoff)
            await asyncio.sleep(backoff * (0.5 + random.random() / 2))
            backoff = min(backoff * 2, self._settings.max_backoff)

    def _client(self) -> httpx.AsyncClient:
        settings = self._settings
        headers = {"Accept": "application/json"}
        if settings.token_file is not None:
            # Read at every (re)connect: projected service-account tokens rotate.
            headers["Authorization"] = "Bearer " + settings.token_file.read_text().strip()
        verify: ssl.SSLContext | bool = True
        if settings.ca_file is not None:
            verify = ssl.create_default_context(cafile=str(settings.ca_file))
        timeout = httpx.Timeout(10.0, read=settings.watch_timeout + 30.0)
        return httpx.AsyncClient(
            base_url=settings.api_url, headers=headers, verify=verify, timeout=timeout
        )

    async def _list(self, client: httpx.AsyncClient) -> str:
        params = {"labelSelector": self._settings.label_selector}
        response = await client.get("/api/v1/services", params=params)
        _check(response)
        body = response.json()
        wanted: dict[str, ToolRoute] = {}
        for item in body.get("items") or []:
            route = service_route(item)
            if route is not None:
                wanted[route.tool] = route
        await asyncio.to_thread(self._routes.resync, list(wanted.values()))
        self._current = wanted
        self.state = UP
        version = (body.get("metadata") or {}).get("resourceVersion")
        if not isinstance(version, str) or not version:
            raise ValueError("service list without a resourceVersion")
        log.info("listed %d routable Services at version %s", len(wanted), version)
        return version

    async def _watch(self, client: httpx.AsyncClient, version: str) -> str:
        params = {
            "labelSelector": self._settings.label_selector,
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self._settings.watch_timeout),
        }
        async with client.stream("GET", "/api/v1/services", params=params) as response:
            _check(response)
            async for line in response.aiter_lines():
                if line.strip():
                    version = await self._event(json.loads(line), version)
        return version

    async def _event(self, event: Mapping[str, Any], version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone("resourceVersion too old")
            raise PortwayError(f"watch error: {obj.get('message') or obj}")
        new_version = (obj.get("metadata") or {}).get("resourceVersion") or version
        if kind in ("ADDED", "MODIFIED"):
            await self._upsert(obj)
        elif kind == "DELETED":
            await self._delete(obj)
        elif kind != "BOOKMARK":
            log.warning("unknown watch event type %r ignored", kind)
            self._count("ignored")
        return str(new_version)

    def _count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    async def _apply(self, call: Any, *args: Any) -> bool:
        """Run one service call; a refusal of this one route is logged and skipped (the
        store being down is not a refusal: it propagates, and the relist catches up)."""
        try:
            await asyncio.to_thread(call, *args)
        except _REFUSALS as exc:
            log.warning("Kubernetes route refused: %s", exc.message)
            self._count("refused")
            return False
        self._count("applied")
        return True

    async def _upsert(self, obj: Mapping[str, Any]) -> None:
        route = service_route(obj)
        name = (obj.get("metadata") or {}).get("name")
        old = self._current.get(name) if isinstance(name, str) else None
        if old is not None and old != route:
            await self._apply(self._routes.unregister, old.tool, old.pattern)
            del self._current[old.tool]
        if route is not None and route != old and await self._apply(self._routes.register, route):
            self._current[route.tool] = route

    async def _delete(self, obj: Mapping[str, Any]) -> None:
        name = (obj.get("metadata") or {}).get("name")
        old = self._current.pop(name, None) if isinstance(name, str) else None
        if old is not None:
            await self._apply(self._routes.unregister, old.tool, old.pattern)


def _check(response: httpx.Response) -> None:
    if response.status_code == 410:
        raise Gone("resourceVersion too old")
    if response.status_code != 200:
        raise PortwayError(f"HTTP {response.status_code} from {response.url.path}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, PortwayError):
        return exc.message
    return f"{exc.__class__.__name__}: {exc}"
