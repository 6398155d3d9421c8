"""An in-memory ``OpenShiftRoutes`` for the OpenShift source's tests (the
service-backed implementation is tested through ``portway serve``): the shared
``apply_event`` over a dict of applications, a change log, hostnames unique across
applications (as the store's are), and injectable store failures."""

from __future__ import annotations

import threading
import time

from portway.errors import ConflictError, StoreError
from portway.protocol.routing_spi import RoutingEvent, action_name
from portway.sources.openshift_routes import (
    AppKey,
    AppRoutes,
    OpenShiftPolicy,
    TlsMaterial,
    apply_event,
    routes,
)

POLICY = OpenShiftPolicy(domain="cloud.example.org")


class MemoryOpenShiftRoutes:
    def __init__(self, policy: OpenShiftPolicy = POLICY) -> None:
        self.policy = policy
        self.apps: dict[AppKey, AppRoutes] = {}
        self.changes: list[tuple[str, str, str]] = []  # (message id, action, pool)
        self.calls: list[tuple[str, str]] = []  # (message id, action) of every apply
        self.events: list[RoutingEvent] = []  # every event committed, in order
        self.committed_at: list[float] = []  # monotonic time of each, same order
        self.fail_next = 0  # so many calls raise StoreError before changing anything
        self.lock = threading.Lock()
        self.applied = threading.Condition(self.lock)

    def apply(self, event: RoutingEvent, message_id: str) -> None:
        with self.lock:
            self.calls.append((message_id, action_name(event)))
            if self.fail_next > 0:
                self.fail_next -= 1
                raise StoreError("database is locked")
            key = AppKey.of(event)
            before = self.apps.get(key)
            after = apply_event(before, event, self.policy)
            self._check_hostnames(key, after)
            if after is None:
                self.apps.pop(key, None)
            else:
                self.apps[key] = after
            if after != before:
                self.changes.append((message_id, action_name(event), key.pool))
            self.events.append(event)
            self.committed_at.append(time.monotonic())
            self.applied.notify_all()

    def _check_hostnames(self, key: AppKey, after: AppRoutes | None) -> None:
        for other, app in self.apps.items():
            if other != key and after is not None:
                taken = set(after.hostnames) & set(app.hostnames)
                if taken:
                    raise ConflictError(f"hostname {sorted(taken)[0]} belongs to {other.pool}")

    def wait(self, predicate: object, timeout: float = 60.0) -> bool:
        with self.applied:
            return self.applied.wait_for(predicate, timeout)  # type: ignore[arg-type]

    def table(self) -> dict[tuple[str, str], tuple[str, tuple[tuple[str, int], ...]]]:
        """(hostname, frontend prefix) → (backend prefix, members): what is routed."""
        with self.lock:
            return {
                (r.hostname, r.frontend): (r.backend, r.members)
                for app in self.apps.values()
                for r in routes(app)
            }

    def certificates(self) -> dict[str, TlsMaterial]:
        with self.lock:
            return {alias: m for app in self.apps.values() for alias, m in app.certificates}

    def projects(self) -> dict[str, str]:
        """pool → project."""
        with self.lock:
            return {key.pool: key.project for key in self.apps}
