"""The node's ``DnsRecords``, from its settings: RFC 2136 with ``dns_server``, else none;
and the periodic check the control process runs beside the API."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from portway.dns.config import dns_config
from portway.dns.records import Rfc2136Records
from portway.dns.seam import CheckReport, DnsRecords, NoDns
from portway.errors import PortwayError
from portway.runtime.config import ServeConfig

log = logging.getLogger("portway.dns")


def node_records(config: ServeConfig) -> DnsRecords:
    """The records this node keeps; a ConfigError names a missing or unreadable
    ``dns_*`` setting (the TSIG secret file is read here, once, at start)."""
    settings = dns_config(config)
    return NoDns() if settings is None else Rfc2136Records(settings)


class DnsCheckJob:
    """Runs ``check`` at start and then every ``interval`` seconds, in a thread (the
    DNS client blocks), logging each finding. A failed check is logged and tried again
    at the next interval; it never stops the node."""

    def __init__(self, check: Callable[[], CheckReport], interval: float) -> None:
        self._check = check
        self.interval = interval
        self.last: CheckReport | None = None

    async def run(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval)

    async def run_once(self) -> None:
        try:
            report = await asyncio.to_thread(self._check)
        except PortwayError as exc:
            log.warning("dns check failed: %s", exc.message)
            return
        self.last = report
        for line in report.findings():
            (log.warning if report.unfixed else log.info)("dns check: %s", line)
