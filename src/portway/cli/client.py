"""A small synchronous HTTP client for the Portway REST API.

It speaks JSON envelopes and nothing else. Every failure leaves this module as a
``PortwayError``: HTTP error documents become the matching class of the error tree
(409 → ``ConflictError`` and so on) with ``status`` set to the code the API sent, and
transport failures become ``UnreachableError`` or ``BadResponseError``. The commands
therefore only ever catch ``PortwayError``.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx

from portway.errors import (
    AuthError,
    ConflictError,
    ForbiddenError,
    MalformedError,
    NotFoundError,
    PortwayError,
    ValidationError,
)

DEFAULT_URL = "http://127.0.0.1:5668"
DEFAULT_TIMEOUT = 30.0

_ERRORS: dict[int, type[PortwayError]] = {
    400: MalformedError,
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
}
_ERRNO_PREFIX = re.compile(r"^\[Errno -?\d+\]\s*")

JSONObject = dict[str, Any]


class UnreachableError(PortwayError):
    """No HTTP exchange with the API happened: refused, timed out, bad address."""

    status = 503


class BadResponseError(PortwayError):
    """The API answered, but not with the JSON this client expects."""

    status = 502


def segment(value: str) -> str:
    """Quote one path segment, so ids and hostnames cannot add path levels."""
    return quote(value, safe="")


class ApiClient:
    """Calls the API at ``url`` with ``token`` (sent as ``X-Auth-Token``)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Accept": "application/json", "User-Agent": "portway-cli"}
        if token:
            headers["X-Auth-Token"] = token
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def get(self, path: str) -> JSONObject:
        return self.request("GET", path)

    def post(self, path: str, body: JSONObject) -> JSONObject:
        return self.request("POST", path, body)

    def delete(self, path: str) -> JSONObject:
        return self.request("DELETE", path)

    def request(self, method: str, path: str, body: JSONObject | None = None) -> JSONObject:
        """Send one request; return the decoded JSON object ({} for an empty body)."""
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TimeoutException:
            raise UnreachableError(f"cannot reach the API at {self.url}: timed out") from None
        except httpx.TransportError as exc:
            raise UnreachableError(f"cannot reach the API at {self.url}: {_reason(exc)}") from None
        except httpx.InvalidURL as exc:
            raise UnreachableError(f"bad API URL {self.url!r}: {exc}") from None
        if response.is_error:
            raise translate(response)
        return self._decode(response)

    def _decode(self, response: httpx.Response) -> JSONObject:
        if not response.content:
            return {}
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise BadResponseError(
                f"the API at {self.url} answered {response.status_code} with a body "
                "that is not JSON"
            ) from None
        if not isinstance(data, dict):
            raise BadResponseError(f"the API at {self.url} answered JSON that is not an object")
        return data


def unwrap(reply: JSONObject, key: str) -> JSONObject:
    """The object inside an envelope such as {"proxy": {...}}."""
    value = reply.get(key, reply)
    return value if isinstance(value, dict) else reply


def unwrap_list(reply: JSONObject, key: str) -> list[JSONObject]:
    """The list inside an envelope such as {"proxies": [...]}."""
    value = reply.get(key, [])
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def translate(response: httpx.Response) -> PortwayError:
    """Turn an HTTP error response into the matching ``PortwayError``."""
    status = response.status_code
    message, field = _error_document(response)
    error = _ERRORS.get(status, PortwayError)(message, field=field)
    error.status = status
    return error


def _error_document(response: httpx.Response) -> tuple[str, str | None]:
    try:
        doc = response.json()["error"]
        message = str(doc["message"])
        field = doc.get("field")
        return message, (str(field) if field else None)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        # Not our error document (a proxy in between, or a crash): say what we can.
        text = " ".join(response.text.split())[:200]
        return (text or "no error message"), None


def _reason(exc: Exception) -> str:
    """'[Errno 111] Connection refused' → 'connection refused'."""
    text = _ERRNO_PREFIX.sub("", str(exc)).strip()
    if not text:
        return type(exc).__name__
    return text[0].lower() + text[1:]
