"""Session persistence: keep a client on the backend it was given, until that backend is
no longer a candidate (down or removed); then the balancer picks again.

- ``cookie``: Portway inserts its own cookie naming the backend (by a hash of its stable
  id, so addresses never leak to clients).
- ``app_cookie``: Portway learns the application's session cookie (``JSESSIONID`` …)
  from ``Set-Cookie`` and sends later requests carrying that value to the same backend.
- ``source_ip``: the client address is remembered for ``ttl`` seconds of inactivity.

The learned tables are bounded (least recently used entries go first), so a flood of new
clients costs memory only up to ``capacity``.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from portway.model import Backend, SessionPersistence
from portway.protocol.grammar import is_cookie_name

DEFAULT_COOKIE = "PORTWAY_SRV"


def backend_token(backend_id: str) -> str:
    """Stable, opaque cookie value for a backend."""
    return hashlib.blake2b(backend_id.encode(), digest_size=6).hexdigest()


def cookie_value(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a request ``Cookie`` header."""
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip('"')
    return None


def set_cookie_value(header: str, name: str) -> str | None:
    """The value a response ``Set-Cookie`` header gives cookie ``name``."""
    key, sep, rest = header.partition("=")
    if not sep or key.strip() != name:
        return None
    return rest.split(";", 1)[0].strip().strip('"')


class _Lru:
    __slots__ = ("_capacity", "_clock", "_data", "_ttl")

    def __init__(self, capacity: int, ttl: float, clock: Callable[[], float]) -> None:
        self._data: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._capacity = capacity
        self._ttl = ttl
        self._clock = clock

    def get(self, key: str) -> str | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if self._clock() - entry[1] > self._ttl:
            del self._data[key]
            return None
        return entry[0]

    def put(self, key: str, value: str) -> None:
        self._data[key] = (value, self._clock())
        self._data.move_to_end(key)
        if len(self._data) > self._capacity:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class Stickiness:
    """Persistence state for one proxy; survives snapshot swaps (keyed by backend id)."""

    __slots__ = ("_by_token", "_ids", "_table", "cookie_name", "type", "writable")

    def __init__(
        self,
        config: SessionPersistence,
        *,
        capacity: int = 100_000,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.type = config.type
        default = DEFAULT_COOKIE if config.type == "cookie" else "JSESSIONID"
        self.cookie_name = config.cookie_name or default
        # The API and the snapshot builder refuse a cookie name that is not a token; if
        # one got here anyway it is never written: the proxy loses its stickiness, and
        # no tenant text lands in a header line.
        self.writable = is_cookie_name(self.cookie_name)
        self._table = _Lru(capacity, ttl, clock)
        self._ids: tuple[str, ...] = ()
        self._by_token: dict[str, Backend] = {}

    def sticky_backend(
        self, candidates: Sequence[Backend], client: str, cookie_header: str
    ) -> Backend | None:
        """The backend this client is bound to, if it is still a candidate."""
        if self.type == "cookie":
            token = cookie_value(cookie_header, self.cookie_name) if cookie_header else None
            return None if token is None else self._tokens(candidates).get(token)
        if self.type == "app_cookie":
            value = cookie_value(cookie_header, self.cookie_name) if cookie_header else None
            backend_id = None if value is None else self._table.get(value)
        else:
            backend_id = self._table.get(client)
        if backend_id is None:
            return None
        for backend in candidates:
            if backend.id == backend_id:
                return backend
        return None

    def bind(
        self, backend: Backend, client: str, *, request_cookie: str, set_cookies: Sequence[str]
    ) -> str | None:
        """Remember the binding after a response; returns a ``Set-Cookie`` value to add."""
        if self.type == "source_ip":
            self._table.put(client, backend.id)
            return None
        if self.type == "app_cookie":
            for header in set_cookies:
                value = set_cookie_value(header, self.cookie_name)
                if value:
                    self._table.put(value, backend.id)
            return None
        token = backend_token(backend.id)
        if not self.writable or cookie_value(request_cookie, self.cookie_name) == token:
            return None
        return f"{self.cookie_name}={token}; Path=/; HttpOnly; SameSite=Lax"

    def _tokens(self, candidates: Sequence[Backend]) -> dict[str, Backend]:
        ids = tuple(b.id for b in candidates)
        if ids != self._ids:
            self._ids = ids
            self._by_token = {backend_token(b.id): b for b in candidates}
        return self._by_token
