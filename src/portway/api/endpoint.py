"""The async shell around each synchronous handler.

The store is synchronous, so everything but reading the body's bytes runs in Starlette's
thread pool: authentication, then JSON decoding, parameter checks and the handler. The
event loop, which the data plane shares, only moves bytes (see ``body`` for why decoding
is also bounded).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import pydantic
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from portway.api.body import decode_json, read_body
from portway.api.openapi import Operation
from portway.api.params import path_params, query_params
from portway.auth.tokens import TokenValidator
from portway.errors import MalformedError
from portway.service import Actor

M = TypeVar("M", bound=pydantic.BaseModel)


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the caller, the path parameters, the checked query parameters
    of its operation and the body."""

    actor: Actor
    params: Mapping[str, str]
    query: Mapping[str, Any]
    body: Any

    def parse(self, model: type[M]) -> M:
        """The body as ``model``; a wrong shape raises pydantic's error (→ 400/422)."""
        if not isinstance(self.body, dict):
            raise MalformedError("the body must be a JSON object", field="body")
        return model.model_validate(self.body)


Handler = Callable[[Call], Response]


def token_of(request: Request) -> str | None:
    token = request.headers.get("x-auth-token")
    if token:
        return token
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else None


def endpoint(
    auth: TokenValidator, operations: Mapping[str, tuple[Operation, Handler]]
) -> Callable[[Request], Awaitable[Response]]:
    """An async Starlette endpoint dispatching by method to sync handlers, the caller
    authenticated by ``auth`` (the Service, or a chain with Keystone's tokens)."""

    async def run(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        op, handler = operations[method]
        # Authenticate before reading a body: a stranger's megabyte is never read.
        actor = await run_in_threadpool(auth.authenticate, token_of(request))
        raw = await read_body(request) if op.request is not None else None

        def call() -> Response:
            return handler(
                Call(
                    actor=actor,
                    params=path_params(request.path_params),
                    query=query_params(op.query, request.query_params),
                    body=None if raw is None else decode_json(raw),
                )
            )

        return await run_in_threadpool(call)

    return run
