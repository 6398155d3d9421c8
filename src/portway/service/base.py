"""What every part of the service shares: the store, the read helper and the write path."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from portway.dns.guard import dns_changes
from portway.dns.seam import DnsRecords, NoDns
from portway.model.backend_policy import BackendPolicy
from portway.model.listen_policy import ListenPolicy
from portway.model.quota import NO_LIMITS, Quota
from portway.service.auth import Actor, require_admin, require_write
from portway.service.hostnames import ProxyRows
from portway.service.quota_check import check_growth
from portway.store import Reader, Store, Transaction

T = TypeVar("T")


def new_id() -> str:
    return uuid.uuid4().hex


class ServiceBase:
    """Holds the store, the operator's backend policy (strict unless told otherwise),
    the DNS records of served hostnames (none unless told otherwise) and the node's
    default quotas (none unless told otherwise); the mixins in this
    package add the operations."""

    def __init__(
        self,
        store: Store,
        *,
        backend_policy: BackendPolicy | None = None,
        dns: DnsRecords | None = None,
        quota_defaults: Quota = NO_LIMITS,
        listen_policy: ListenPolicy | None = None,
    ) -> None:
        self.store = store
        self.backend_policy = backend_policy or BackendPolicy()
        # The node's quotas, for projects that have none of their own (--quota-*).
        self.quota_defaults = quota_defaults
        # The ports tenants may claim (--listen-ports); none unless told otherwise.
        self.listen_policy = listen_policy or ListenPolicy()
        self.dns: DnsRecords = NoDns() if dns is None else dns

    def _read(self, query: Callable[[Reader], T]) -> T:
        return self.store.read(query)

    @contextmanager
    def _write(self, actor: Actor, project: str | None = None) -> Iterator[Transaction]:
        """The one way to change configuration: a transaction as ``actor``, entered only
        once ``actor`` may write ``project`` (None: a service-wide change, admins only).

        The body makes the change and records it with ``tx.record``; the store refuses to
        commit a write without its one change record. Whatever the body raises rolls the
        whole write back, so a rule checked inside it sees committed state only.
        """
        with self._proxy_write(actor, project) as rows:
            yield rows.tx

    @contextmanager
    def _proxy_write(self, actor: Actor, project: str | None = None) -> Iterator[ProxyRows]:
        """``_write``, for a body that writes proxy rows: through the ``ProxyRows`` it
        gets, the only way to. The write's growth is held to the quotas after the body
        (service/quotas.py); the hostnames' DNS records change after that, once every
        check passed, and before the commit; a commit that fails undoes them."""
        if project is None:
            require_admin(actor)
        with dns_changes(self.dns) as dns, self.store.transaction(actor.name) as tx:
            if project is not None:
                require_write(tx, actor, project)
            rows = ProxyRows(tx)
            yield rows
            check_growth(tx, self.quota_defaults)
            rows.apply(dns)
