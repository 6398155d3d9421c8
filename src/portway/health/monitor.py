"""Active health checking for every backend of every proxy that asks for it.

One monitor runs per node (in the control process), never per worker; its verdicts are
pushed to the data plane(s) through ``on_change``. Probes of one backend are serialized
and spread over the whole interval with a random phase so that a big table does not
probe in bursts; a backend not judged yet counts as up, so the phase delays no traffic.
Verdicts are reported in batches (``COALESCE``): the first round of a fresh table of a
thousand backends is a few reports, not a thousand copies of the whole table.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping

from portway.health.expect import parse_expected_codes
from portway.health.probe import probe
from portway.health.state import UP, Health, observe
from portway.model import Backend, Proxy
from portway.model.backend_policy import BackendPolicy
from portway.router import Snapshot
from portway.tls.upstream import upstream_context

log = logging.getLogger("portway.health")

Target = tuple[str, str]  # (proxy id, backend id)

COALESCE = 0.05  # seconds: verdicts within this window are reported together


class HealthMonitor:
    """Runs the probes; ``health`` maps (proxy id, backend id) to its current Health."""

    def __init__(
        self,
        on_change: Callable[[Mapping[Target, Health]], None],
        *,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        backend_policy: BackendPolicy | None = None,
        upstream_tls: ssl.SSLContext | None = None,
    ) -> None:
        self._on_change = on_change
        self._policy = backend_policy or BackendPolicy()
        # The data plane's rule for TLS backends (tls/upstream.py), so probes meet what
        # traffic meets.
        self._tls = upstream_tls or upstream_context(None)
        self._clock = clock
        self._rng = rng or random.Random()
        self._tasks: dict[Target, tuple[asyncio.Task[None], Proxy, Backend]] = {}
        self._by_proxy: dict[str, set[Target]] = {}
        self.health: dict[Target, Health] = {}
        self._report: asyncio.TimerHandle | None = None  # a batched on_change, pending

    def update(self, snapshot: Snapshot, changed: set[str] | None = None) -> None:
        """Start probes for new targets, restart changed ones, stop removed ones.

        ``changed`` names the proxies that changed since the last call (None: look at
        everything), so a change costs O(its backends), not O(table)."""
        if changed is None:
            scope = set(self._by_proxy) | {r.proxy.id for r in snapshot.routes.routes()}
        else:
            scope = changed
        removed_any = False
        for proxy_id in scope:
            removed_any |= self._sync_proxy(proxy_id, snapshot)
        if removed_any:
            self._changed()

    def _changed(self) -> None:
        """A verdict changed: report the table once the batching window has passed."""
        if self._report is None:
            self._report = asyncio.get_running_loop().call_later(COALESCE, self._send)

    def _send(self) -> None:
        self._report = None
        self._on_change(dict(self.health))

    def _sync_proxy(self, proxy_id: str, snapshot: Snapshot) -> bool:
        """Bring one proxy's probes in line; True when a reported health was dropped."""
        route = snapshot.routes.get(proxy_id)
        proxy = route.proxy if route is not None else None
        wanted: dict[Target, Backend] = {}
        if proxy is not None and proxy.health_check is not None:
            wanted = {(proxy_id, b.id): b for b in proxy.backends}
        dropped = False
        for target in self._by_proxy.pop(proxy_id, set()):
            task, old_proxy, old_backend = self._tasks.pop(target)
            backend = wanted.get(target)
            if backend == old_backend and proxy is not None and _same_probe(old_proxy, proxy):
                self._tasks[target] = (task, proxy, old_backend)  # unchanged: keep probing
                continue
            task.cancel()  # a changed target gets a fresh task below; its health stays
            if backend is None and self.health.pop(target, None) is not None:
                dropped = True
        for target, backend in wanted.items():
            if target not in self._tasks:
                assert proxy is not None
                task = asyncio.create_task(self._run(target, proxy, backend))
                self._tasks[target] = (task, proxy, backend)
        if wanted:
            self._by_proxy[proxy_id] = set(wanted)
        return dropped

    async def close(self) -> None:
        if self._report is not None:  # what is known is still reported
            self._report.cancel()
            self._send()
        for task, _, _ in self._tasks.values():
            task.cancel()
        await asyncio.gather(*(t for t, _, _ in self._tasks.values()), return_exceptions=True)
        self._tasks.clear()
        self._by_proxy.clear()

    async def _run(self, target: Target, proxy: Proxy, backend: Backend) -> None:
        check = proxy.health_check
        assert check is not None
        expected = parse_expected_codes(check.expected_codes)
        host = proxy.hostname.removeprefix("*.")
        await asyncio.sleep(self._rng.uniform(0, check.interval))
        while True:
            tls = self._tls if backend.tls else None
            error = await probe(
                backend.address, backend.port, check, expected, host, self._policy, tls
            )
            before = self.health.get(target, Health())
            after = observe(
                before,
                error is None,
                rise=check.rise,
                fall=check.fall,
                at=self._clock(),
                error=error,
            )
            self.health[target] = after
            if after.status != before.status:
                level = logging.INFO if after.status == UP else logging.WARNING
                log.log(
                    level,
                    "backend %s:%s of %s is %s%s",
                    backend.address,
                    backend.port,
                    proxy.hostname,
                    after.status,
                    f" ({error})" if error else "",
                )
                self._changed()
            await asyncio.sleep(check.interval)


def _same_probe(old: Proxy, new: Proxy) -> bool:
    """Whether a running probe task still sends what ``new`` asks for."""
    return old.health_check == new.health_check and old.hostname == new.hostname
