"""Who a token belongs to: the ``TokenValidator`` seam, the Keystone identity and its
role mapping, the bounded cache of validated tokens, and the chain that tries Portway's
own tokens before Keystone's (pure, apart from the validators it is given).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from portway.errors import AuthError
from portway.model import Role
from portway.service.auth import Actor

# Keystone's roles, highest first; the first a token has is its Portway role.
KEYSTONE_ROLES = (("admin", Role.ADMIN), ("member", Role.MEMBER), ("reader", Role.READER))
# A token is sent on to Keystone in a header: visible ASCII only (RFC 9110 field value
# without spaces), and bounded (Fernet tokens are under 300 bytes, JWS under 1000).
_TOKEN = re.compile(r"[!-~]{1,4096}\Z")


class TokenValidator(Protocol):
    """Turns the secret of ``X-Auth-Token`` into the caller, or raises ``AuthError``
    (401), ``ForbiddenError`` (403) or a ``DependencyError`` (503): never an Actor
    when the token could not be checked."""

    def authenticate(self, secret: str | None) -> Actor: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Identity:
    """What Keystone says about a valid token scoped to a project."""

    project_id: str
    project_name: str
    user_id: str
    user_name: str
    role: Role
    expires_at: float  # seconds since the epoch

    @property
    def project(self) -> str:
        """The Portway project: the Keystone project's id, which is what the
        ``$(tenant_id)s`` of the catalog's URL puts into the API path."""
        return self.project_id

    def actor(self) -> Actor:
        return Actor(name=f"keystone:{self.user_name}", role=self.role, project=self.project)


def portway_role(roles: Iterable[str]) -> Role | None:
    """The highest Portway role among Keystone role names, or None."""
    names = {name.lower() for name in roles}
    return next((role for name, role in KEYSTONE_ROLES if name in names), None)


def check_token_shape(secret: str) -> None:
    if not _TOKEN.match(secret):
        raise AuthError("malformed token")


class TokenCache:
    """Validated tokens, kept by their SHA-256 (never the secret), for at most ``ttl``
    seconds and never past the token's own expiry; at most ``size`` of them, the least
    recently used dropped first. Safe to share between threads."""

    def __init__(self, *, size: int, ttl: float, clock: Callable[[], float]) -> None:
        self.size, self.ttl = size, ttl
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, Identity]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, secret: str) -> Identity | None:
        key = _key(secret)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, secret: str, identity: Identity) -> None:
        until = min(self._clock() + self.ttl, identity.expires_at)
        if self.size <= 0 or until <= self._clock():
            return
        with self._lock:
            self._entries[_key(secret)] = (until, identity)
            self._entries.move_to_end(_key(secret))
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def _key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class TokenChain:
    """Portway's own tokens first (a local lookup that works while Keystone is down),
    then the next validator. A missing token is refused at once; any other refusal of
    the first lets the next one decide, and its answer, refusal or outage, is final."""

    def __init__(self, *validators: TokenValidator) -> None:
        self.validators = validators

    def authenticate(self, secret: str | None) -> Actor:
        if not secret:
            raise AuthError("missing token: send X-Auth-Token or Authorization: Bearer")
        *first, last = self.validators
        for validator in first:
            try:
                return validator.authenticate(secret)
            except AuthError:
                continue
        return last.authenticate(secret)
