"""Keystone tokens: ``KeystoneTokens`` validates the caller's token with
``GET /v3/auth/tokens`` (``X-Subject-Token``), authorized by a service token of its own.

- The service token comes from the service credentials (password method, scoped to the
  service project) and is renewed a minute before it expires, or at once when Keystone
  answers 401 to it.
- Keystone's answers: 200 → the token's project, user and roles; 404 → the token is
  unknown, expired or revoked (401 to the caller). Anything else, and no answer at all,
  is a ``KeystoneError`` (503): a token that could not be checked is never accepted.
- Valid tokens are cached (``TokenCache``): a revoked token may keep working for up to
  ``cache_ttl`` seconds, the price of not asking Keystone on every call.

Synchronous, like the service calls it serves (they run in the API's thread pool).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from portway.auth.config import KeystoneConfig
from portway.auth.tokens import Identity, TokenCache, check_token_shape, portway_role
from portway.errors import AuthError, ForbiddenError, KeystoneError
from portway.service.auth import Actor

log = logging.getLogger("portway.keystone")
RENEW_BEFORE = 60.0  # seconds before its expiry the service token is replaced


class KeystoneTokens:
    """The ``TokenValidator`` for Keystone tokens."""

    def __init__(
        self,
        config: KeystoneConfig,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self._http = httpx.Client(
            base_url=config.url,
            timeout=config.timeout,
            verify=str(config.cafile) if config.cafile else True,
            transport=transport,
            trust_env=False,  # a proxy from the environment must not see the tokens
        )
        self.cache = TokenCache(size=config.cache_size, ttl=config.cache_ttl, clock=clock)
        self._service: tuple[str, float] | None = None  # (token, expires at)
        self._service_lock = threading.Lock()

    def authenticate(self, secret: str | None) -> Actor:
        return self.validate(secret).actor()

    def validate(self, secret: str | None) -> Identity:
        """The identity of a valid, project-scoped token with a known role."""
        if not secret:
            raise AuthError("missing token: send X-Auth-Token")
        check_token_shape(secret)
        identity = self.cache.get(secret)
        if identity is None:
            identity = identity_of(self._lookup(secret))
            self.cache.put(secret, identity)
        return identity

    def close(self) -> None:
        self._http.close()

    def _lookup(self, secret: str) -> dict[str, Any]:
        """Keystone's body for the token; a stale service token is renewed once."""
        for renew in (False, True):
            headers = {"X-Auth-Token": self._service_token(renew=renew), "X-Subject-Token": secret}
            response = self._send("GET", "/v3/auth/tokens", headers=headers)
            if response.status_code == 200:
                return _json(response)
            if response.status_code == 404:
                raise AuthError("invalid token: Keystone does not know it, or it has expired")
            if response.status_code != 401:
                raise self._refused("token validation", response)
            log.info("keystone: the service token was refused; renewing it")
        raise KeystoneError(
            f"Keystone at {self.config.url} refuses the service token of "
            f"{self.config.user!r} even when new: the caller's token cannot be checked"
        )

    def _service_token(self, *, renew: bool) -> str:
        with self._service_lock:
            if renew or self._service is None or self._service[1] - RENEW_BEFORE <= self._clock():
                self._service = self._issue_service_token()
            return self._service[0]

    def _issue_service_token(self) -> tuple[str, float]:
        c = self.config
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": c.user,
                            "domain": {"name": c.user_domain},
                            "password": c.password,
                        }
                    },
                },
                "scope": {"project": {"name": c.project, "domain": {"name": c.project_domain}}},
            }
        }
        response = self._send("POST", "/v3/auth/tokens", json=body)
        if response.status_code != 201 or not response.headers.get("x-subject-token"):
            raise self._refused(f"the service credentials of {c.user!r}", response)
        expires = _expiry(_json(response).get("token", {}))
        return response.headers["x-subject-token"], expires

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            try:
                return self._http.request(method, path, **kwargs)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                # Most often a kept-alive connection the server closed as the request
                # left (uWSGI's --http-socket does): once more, on a new connection.
                return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise KeystoneError(
                f"Keystone at {self.config.url} did not answer within "
                f"{self.config.timeout:g} s: tokens cannot be checked"
            ) from None
        except httpx.HTTPError as exc:
            raise KeystoneError(
                f"cannot reach Keystone at {self.config.url}: {exc}: tokens cannot be checked"
            ) from None

    def _refused(self, what: str, response: httpx.Response) -> KeystoneError:
        return KeystoneError(
            f"Keystone at {self.config.url} refused {what}: "
            f"{response.status_code} {response.reason_phrase}"
        )


def identity_of(body: dict[str, Any]) -> Identity:
    """The Identity in a validation answer, or the refusal it implies."""
    token = body.get("token")
    if not isinstance(token, dict):
        raise KeystoneError("Keystone's answer to a token validation has no token")
    project = token.get("project")
    if not isinstance(project, dict):
        raise AuthError("the Keystone token is not scoped to a project")
    roles = [r.get("name", "") for r in token.get("roles", []) if isinstance(r, dict)]
    role = portway_role(roles)
    if role is None:
        raise ForbiddenError(
            "the Keystone token has none of the roles admin, member or reader in its project"
        )
    user = token.get("user")
    user = user if isinstance(user, dict) else {}
    try:
        return Identity(
            project_id=str(project["id"]),
            project_name=str(project["name"]),
            user_id=str(user.get("id", "")),
            user_name=str(user.get("name", "")),
            role=role,
            expires_at=_expiry(token),
        )
    except KeyError as exc:
        raise KeystoneError(f"Keystone's token has no project {exc.args[0]}") from None


def _expiry(token: dict[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(token["expires_at"])).timestamp()
    except (KeyError, ValueError):
        raise KeystoneError("Keystone's token has no readable expires_at") from None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        raise KeystoneError("Keystone's answer is not JSON") from None
    if not isinstance(body, dict):
        raise KeystoneError("Keystone's answer is not a JSON object")
    return body
