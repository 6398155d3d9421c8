"""The async shell around each synchronous handler.

The store is synchronous, so handlers are plain functions run in Starlette's thread
pool; only body reading (with the size limit) happens on the event loop, which the
data plane shares and which must never block.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from portway.api.errors import PayloadTooLargeError
from portway.errors import MalformedError
from portway.service import Actor, Service

MAX_BODY = 1024 * 1024
M = TypeVar("M", bound=pydantic.BaseModel)


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the caller, the path parameters, the query and the body."""

    actor: Actor
    params: Mapping[str, str]
    query: Mapping[str, str]
    body: Any

    def parse(self, model: type[M]) -> M:
        """The body as ``model``; a wrong shape raises pydantic's error (→ 400)."""
        if not isinstance(self.body, dict):
            raise MalformedError("the body must be a JSON object", field="body")
        return model.model_validate(self.body)

    def int_query(self, name: str, default: int) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        try:
            return int(raw)
        except ValueError:
            raise MalformedError(f"{name} must be an integer", field=name) from None


Handler = Callable[[Call], Response]


def token_of(request: Request) -> str | None:
    token = request.headers.get("x-auth-token")
    if token:
        return token
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


async def read_json(request: Request) -> Any:
    """The JSON body, refusing more than MAX_BODY bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise PayloadTooLargeError(f"the body is larger than {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise PayloadTooLargeError(f"the body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise MalformedError("a JSON body is required", field="body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedError(f"malformed JSON: {err}", field="body") from None


def endpoint(
    service: Service, handlers: Mapping[str, Handler]
) -> Callable[[Request], Awaitable[Response]]:
    """An async Starlette endpoint dispatching by method to sync, authenticated handlers."""

    async def run(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        handler = handlers[method]
        actor = await run_in_threadpool(service.authenticate, token_of(request))
        body = await read_json(request) if method in ("POST", "PUT", "PATCH") else None
        call = Call(
            actor=actor,
            params=dict(request.path_params),
            query=dict(request.query_params),
            body=body,
        )
        return await run_in_threadpool(handler, call)

    return run
