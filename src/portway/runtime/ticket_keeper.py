"""This node's part in the tier's TLS session-ticket keys (``--tls-ticket-rotation``).

Every ``Schedule.fetch_every()`` seconds: make the keys the schedule wants that no node
has made yet, drop expired ones, and hand the live set to the data plane whenever it
changed (which sends it to every worker). A store that cannot be reached is logged once
per outage; the data plane keeps the keys it has, which go on working until they expire
(then handshakes get no ticket until the store is back).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
import time
from collections.abc import Callable

from portway.errors import ConfigError, PortwayError
from portway.runtime.plane_handle import DataPlaneHandle
from portway.store import Store
from portway.store.tickets import keep_ticket_keys
from portway.tls.openssl import TicketKeyInstaller
from portway.tls.tickets import Schedule

log = logging.getLogger("portway.tls")


def check_ticket_support(ctx: ssl.SSLContext) -> None:
    """At start-up: refuse to start, saying what to do, when shared ticket keys cannot
    be installed in this Python's OpenSSL (rather than silently resume nowhere else)."""
    if not TicketKeyInstaller.available(ctx):
        raise ConfigError(
            "--tls-ticket-rotation: cannot reach OpenSSL's SSL_CTX from Python's ssl "
            f"(CPython {'.'.join(map(str, sys.version_info[:3]))}, "
            f"{ssl.OPENSSL_VERSION}), so TLS session-ticket keys cannot be shared; "
            "set --tls-ticket-rotation 0 to keep per-process keys"
        )


class TicketKeeper:
    def __init__(
        self,
        store: Store,
        handle: DataPlaneHandle,
        schedule: Schedule,
        node: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._handle = handle
        self._schedule = schedule
        self._node = node
        self._clock = clock
        self._names: tuple[bytes, ...] = ()
        self._failing = False

    async def refresh(self) -> None:
        try:
            keys = await asyncio.to_thread(
                keep_ticket_keys, self._store, self._schedule, self._clock(), self._node
            )
        except PortwayError as exc:
            if not self._failing:
                log.warning("cannot read the TLS ticket keys: %s; keeping the current ones", exc)
            self._failing = True
            return
        if self._failing:
            log.info("TLS ticket keys read again")
        self._failing = False
        if keys.names() != self._names:
            self._names = keys.names()
            self._handle.set_ticket_keys(keys)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._schedule.fetch_every())
            await self.refresh()
