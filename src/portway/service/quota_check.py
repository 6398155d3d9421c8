"""The quota rules a write is held to (``QuotaOps`` in quotas.py sets the quotas).

``check_growth`` runs inside every write, after its body and before its commit
(``ServiceBase._proxy_write``), over what the write added (``Transaction.growth``): so a
quota holds whichever caller wrote (the API, the dynamicproxy API, a source), and two
concurrent creates cannot both pass a quota of one, because writers hold the store's
revision lock in turn and the second counts what the first committed. Only a write that
grows a use past its limit is refused: a quota lowered below the current use leaves what
exists alone and still lets it shrink.
"""

from __future__ import annotations

import logging

from portway.errors import QuotaExceededError, ValidationError
from portway.model import Proxy
from portway.model.quota import QUOTA_NAMES, UNLIMITED, Quota
from portway.store import Reader, Transaction

log = logging.getLogger(__name__)
MAX_QUOTA = 2**63 - 1  # the column is a BIGINT
MAX_QUOTA = 2**63 - 1  # the column is a BIGINT


def check_growth(tx: Transaction, defaults: Quota) -> None:
    """Refuse (QuotaExceededError, the write rolls back) when the write grew a use past
    the limit of its project."""
    for (name, key), delta in sorted(tx.growth.items()):
        if delta <= 0:
            continue
        found = tx.quota_use(name, key)
        if found is None:  # the proxy went in the same write
            continue
        project, in_use = found
        _check(tx.get_quota(project).over(defaults), project, name, in_use, in_use - delta)


def check_tool_proxy(reader: Reader, defaults: Quota, before: Proxy, after: Proxy) -> None:
    """The quotas a tool's proxy ``after`` would break (``before`` of revision 0: it is
    new), checked before anything is written, so a resync skips just that tool."""
    quota = reader.get_quota(after.project).over(defaults)
    if before.revision == 0:
        count = reader.count_proxies(after.project)
        _check(quota, after.project, "proxies", count + 1, count)
    if len(after.backends) > len(before.backends):
        size = len(after.backends)
        _check(quota, after.project, "backends_per_proxy", size, len(before.backends))
    stored = before.cache.reserved_bytes if before.revision else 0
    grown = after.cache.reserved_bytes - stored
    if grown > 0:  # the same use Transaction.growth counts, before it is written
        found = reader.quota_use("cache_bytes", after.project)
        in_use = 0 if found is None else found[1]
        _check(quota, after.project, "cache_bytes", in_use + grown, in_use)


def _check(quota: Quota, project: str, name: str, wanted: int, in_use: int) -> None:
    """Refuse a write that takes ``name`` from ``in_use`` to ``wanted`` past its limit."""
    if not quota.allows(name, wanted):
        limit = getattr(quota, name)
        log.info("project %s: quota %s (%d) refused a write to %d", project, name, limit, wanted)
        raise QuotaExceededError(project=project, quota=name, limit=limit, in_use=in_use)


def validated(quota: Quota) -> Quota:
    """Every field None, -1 (unlimited) or a limit from 0 up."""
    for name in QUOTA_NAMES:
        value = getattr(quota, name)
        ok = value is None or (
            isinstance(value, int)
            and not isinstance(value, bool)
            and UNLIMITED <= value <= MAX_QUOTA
        )
        if not ok:
            raise ValidationError(
                f"{name} must be null (the node's default), -1 (unlimited) or 0 to {MAX_QUOTA}",
                field=name,
            )
    return quota
