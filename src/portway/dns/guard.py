"""Nothing half done: DNS changes that a later failure (the store's commit) undoes.

The caller makes its DNS changes through ``DnsChanges`` inside the ``with`` block that
also holds its store transaction, after the store's own checks and before the commit::

    with dns_changes(records) as dns:
        with store.transaction(actor) as tx:
            ...                    # store checks: the name is free in the store
            dns.claim(hostname)    # DnsError/ConflictError: nothing is committed
            tx.insert_proxy(...)
        # committed; a failing commit raises through here and the claim is undone

An undo reverts only what the changes did (``Done``). If the undo itself fails, it is
logged and the original error still propagates; ``portway dns check`` lists or repairs
what was left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from portway.dns.seam import DnsRecords, Done
from portway.errors import PortwayError

log = logging.getLogger("portway.dns")


class DnsChanges:
    """The changes made so far, in order, for ``undo``."""

    def __init__(self, records: DnsRecords) -> None:
        self.records = records
        self.done: list[Done] = []

    def claim(self, hostname: str) -> None:
        self.done.append(self.records.claim(hostname))

    def release(self, hostname: str) -> None:
        self.done.append(self.records.release(hostname))

    def move(self, old: str, new: str) -> None:
        self.done.append(self.records.move(old, new))

    def undo(self) -> None:
        """Revert the changes, newest first: remove what was created, restore what was
        removed."""
        while self.done:
            done = self.done.pop()
            for hostname in done.created:
                self._try(self.records.release, hostname, "remove")
            for hostname in done.removed:
                self._try(self.records.claim, hostname, "restore")

    @staticmethod
    def _try(step: Callable[[str], Done], hostname: str, verb: str) -> None:
        try:
            step(hostname)
        except PortwayError as exc:
            log.error("dns: could not %s %s after a failed change: %s", verb, hostname, exc)


@contextmanager
def dns_changes(records: DnsRecords) -> Iterator[DnsChanges]:
    """Yield a ``DnsChanges``; if the block raises, undo them and re-raise."""
    changes = DnsChanges(records)
    try:
        yield changes
    except BaseException:
        changes.undo()
        raise
