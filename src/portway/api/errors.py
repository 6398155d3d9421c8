"""Every error the API answers is JSON: {"error": {"code", "title", "message", "field"}}.

PortwayError subclasses map by their ``status``; pydantic errors become 400 (wrong type or
shape) or 422 (a limit broken), naming the field; Starlette's own 404/405 keep their status
(and the Allow header).
"""

from __future__ import annotations

import http
import logging
from typing import Any

import pydantic
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portway.errors import PortwayError, QuotaExceededError

log = logging.getLogger(__name__)


class PayloadTooLargeError(PortwayError):
    status = 413


def error_response(
    status: int,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "code": status,
        "title": http.HTTPStatus(status).phrase,
        "message": message,
    }
    if field is not None:
        body["field"] = field
    body.update(extra or {})
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def field_path(loc: tuple[int | str, ...]) -> str:
    """("proxy", "backends", 0, "port") → "backends[0].port" (the envelope key dropped)."""
    parts = list(loc[1:]) if len(loc) > 1 else list(loc)
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# Pydantic errors about a value's size or range, not its type: the request has the right
# shape and breaks a limit, as the service's own rules do (422, not 400).
LIMIT_ERRORS = frozenset(
    {
        "string_too_short",
        "string_too_long",
        "too_short",
        "too_long",
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "finite_number",
        "string_pattern_mismatch",
    }
)


def pydantic_error(exc: pydantic.ValidationError) -> JSONResponse:
    first = exc.errors(include_url=False, include_input=False)[0]
    name = field_path(tuple(first["loc"])) or "body"
    status = 422 if first["type"] in LIMIT_ERRORS else 400
    return error_response(status, f"{name}: {first['msg']}", name)


async def handle_portway(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PortwayError)
    if exc.status >= 500:
        log.error("request failed: %s", exc)
    extra = None
    if isinstance(exc, QuotaExceededError):
        extra = {"quota": {"name": exc.quota, "limit": exc.limit, "in_use": exc.in_use}}
    return error_response(exc.status, exc.message, exc.field, extra=extra)


async def handle_pydantic(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, pydantic.ValidationError)
    return pydantic_error(exc)


async def handle_http(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail, headers=dict(exc.headers or {}))


async def handle_unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unexpected error in API", exc_info=exc)
    return error_response(500, "internal error")


EXCEPTION_HANDLERS = {
    PortwayError: handle_portway,
    pydantic.ValidationError: handle_pydantic,
    HTTPException: handle_http,
    Exception: handle_unexpected,
}
