"""The Cloud VPS dynamicproxy API on the API listener (compat.md §1), served by default.

    GET    /dynamicproxy-api/v1/<project>/zones             the zones it may use
    GET    /dynamicproxy-api/v1/<project>/mapping           {"routes": [...]}
    PUT    /dynamicproxy-api/v1/<project>/mapping           create, or append backends: ""
    GET    /dynamicproxy-api/v1/<project>/mapping/<domain>  {"domain", "backends"}
    POST   /dynamicproxy-api/v1/<project>/mapping/<domain>  replace, may rename: "OK"
    DELETE /dynamicproxy-api/v1/<project>/mapping/<domain>  "deleted"

The token (``X-Auth-Token``, Keystone's or Portway's) must belong to ``<project>``: any
role reads, member and admin write. Bodies are JSON whatever the Content-Type says, as
the original read them (``wmcs-webproxy`` sends none). Success bodies are the original's
text and JSON; ``Invalid domain`` and ``No such domain`` are its texts; every other
error is Portway's JSON error. The rules are in ``compat.dynamicproxy``, the writes in
``service.mappings``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, RootModel
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from portway.api.body import decode_json, read_body
from portway.api.endpoint import token_of
from portway.api.openapi import Operation
from portway.auth.tokens import TokenValidator
from portway.compat import dynamicproxy as dp
from portway.errors import NotFoundError
from portway.model import Proxy
from portway.model.hostname import MAX_HOSTNAME
from portway.service import MAX_BACKENDS, Actor, Service

BASE = "/dynamicproxy-api/v1/{project}"


# The wire shapes, for the OpenAPI document only: the handlers parse bodies with the
# original's rules (compat.dynamicproxy), which these patterns describe. A domain's last
# label starts with a letter here (one that is all digits is refused as an address).
_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = "[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
DOMAIN_PATTERN = rf"^(\*\.)?({_LABEL}\.)+{_TLD}$"
BACKEND_PATTERN = r"^http://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?/?$"


class MappingIn(BaseModel):
    """A PUT or POST body; other keys are ignored, as the original did."""

    domain: str = Field(max_length=MAX_HOSTNAME, pattern=DOMAIN_PATTERN)
    backends: list[str] = Field(
        max_length=MAX_BACKENDS,
        description="http://host:port URLs, read back exactly as sent",
        json_schema_extra={"items": {"type": "string", "pattern": BACKEND_PATTERN}},
    )


class MappingOut(BaseModel):
    domain: str
    backends: list[str]


class RoutesOut(BaseModel):
    routes: list[MappingOut]


class ZoneFlags(BaseModel):
    deprecated: bool
    default: bool
    shared: bool


class ZonesOut(RootModel[dict[str, ZoneFlags]]):
    """The zones the project may put mappings in, by name."""


def _op(method: str, summary: str, **kw: Any) -> Operation:
    return Operation(method, f"dynamicproxy: {summary}", text_errors=(400, 404), **kw)


# (path under BASE, handler name, its documentation): the routes and /openapi.json.
TABLE: tuple[tuple[str, str, Operation], ...] = (
    ("/zones", "zones", _op("GET", "the zones this project may use", response=ZonesOut)),
    ("/mapping", "list", _op("GET", "every mapping of the project", response=RoutesOut)),
    ("/mapping", "put", _op("PUT", "create, or append backends", request=MappingIn, text="")),
    ("/mapping/{domain}", "show", _op("GET", "one mapping", response=MappingOut)),
    (
        "/mapping/{domain}",
        "replace",
        _op("POST", "replace the backends, may rename", request=MappingIn, text="OK"),
    ),
    ("/mapping/{domain}", "delete", _op("DELETE", "delete a mapping", text="deleted")),
)


def dynamicproxy_operations() -> list[tuple[str, list[Operation]]]:
    """The API's operations by full path, for the OpenAPI document."""
    by_path: dict[str, list[Operation]] = {}
    for path, _, op in TABLE:
        by_path.setdefault(BASE + path, []).append(op)
    return list(by_path.items())


@dataclass(frozen=True, slots=True)
class Call:
    actor: Actor  # as this API's caller (compat_actor)
    project: str
    domain: str | None  # the path's, as given
    body: Any


Handler = Callable[[Call], Response]


class DynamicProxyHandlers:
    """Thin adapters from the original's routes to the service's mappings."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def zones(self, call: Call) -> Response:
        return JSONResponse(dp.zones_out(self.service.list_zones(call.actor), call.project))

    def list(self, call: Call) -> Response:
        return JSONResponse(dp.routes_out(self.service.list_mappings(call.actor, call.project)))

    def put(self, call: Call) -> Response:
        wanted = dp.parse_request(call.body)
        self.service.add_mapping(
            call.actor, call.project, wanted.domain, wanted.backends, dp.draft(wanted.domain)
        )
        return HTMLResponse("")

    def show(self, call: Call) -> Response:
        return JSONResponse(dp.mapping_out(self._mapping(call)))

    def replace(self, call: Call) -> Response:
        wanted = dp.parse_request(call.body)
        domain = _path_domain(call)
        with _no_such_domain():
            self.service.replace_mapping(
                call.actor, call.project, domain, wanted.domain, wanted.backends
            )
        return HTMLResponse("OK")

    def delete(self, call: Call) -> Response:
        mapping = self._mapping(call)
        with _no_such_domain():
            self.service.delete_proxy(call.actor, call.project, mapping.id)
        return HTMLResponse("deleted")

    def _mapping(self, call: Call) -> Proxy:
        domain = _path_domain(call)
        with _no_such_domain():
            return self.service.get_mapping(call.actor, call.project, domain)


def _path_domain(call: Call) -> str:
    """The path's domain; one that breaks the rules cannot exist: ``No such domain``."""
    try:
        return dp.parse_domain(call.domain)
    except dp.InvalidDomainError:
        raise dp.NoSuchDomainError from None


@contextmanager
def _no_such_domain() -> Iterator[None]:
    """A missing mapping (or its proxy gone meanwhile) is the original's text."""
    try:
        yield
    except NotFoundError as exc:
        if exc.field in ("domain", "proxy"):
            raise dp.NoSuchDomainError from None
        raise


def _endpoint(
    auth: TokenValidator, handler: Handler, *, body: bool
) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        try:
            # Authenticate (and check the project) before reading a body.
            actor = await run_in_threadpool(auth.authenticate, token_of(request))
            project = request.path_params["project"]
            dp.check_project(actor, project)
            raw = await read_body(request) if body else None

            def call() -> Response:
                return handler(
                    Call(
                        actor=dp.compat_actor(actor),
                        project=project,
                        domain=request.path_params.get("domain"),
                        body=None if raw is None else decode_json(raw),
                    )
                )

            return await run_in_threadpool(call)
        except dp.PLAIN_ERRORS as exc:
            return PlainTextResponse(exc.message, status_code=exc.status)

    return run


def dynamicproxy_routes(service: Service, auth: TokenValidator) -> list[BaseRoute]:
    h = DynamicProxyHandlers(service)
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for path, name, op in TABLE:
        handler: Handler = getattr(h, name)
        run = _endpoint(auth, handler, body=op.request is not None)
        by_path.setdefault(path, {})[op.method] = run
    return [_route(BASE + path, methods) for path, methods in by_path.items()]


def _route(path: str, methods: dict[str, Callable[[Request], Awaitable[Response]]]) -> Route:
    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await methods[method](request)

    return Route(path, dispatch, methods=list(methods))
