"""``create_app``: the Starlette application serving the v1 REST API."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from portway.api import params, schemas
from portway.api.certificates import CertificateHandlers
from portway.api.convert import HealthFn, PlaneFn, PurgeFn, no_plane_status
from portway.api.dns import dns_table
from portway.api.dynamicproxy import dynamicproxy_operations, dynamicproxy_routes
from portway.api.endpoint import Handler, endpoint
from portway.api.errors import EXCEPTION_HANDLERS
from portway.api.openapi import Operation, build_openapi
from portway.api.proxies import ProxyHandlers
from portway.api.quotas import QuotaHandlers
from portway.api.v1 import AdminHandlers
from portway.auth.tokens import TokenValidator
from portway.cache.store import Purge
from portway.observability.readiness import Readiness
from portway.service import Service

P = "/v1/{project}"
PX = P + "/proxies/{proxy}"


def _unknown_health(_proxy_id: str, _backend_id: str) -> dict[str, Any]:
    return {"health": "unknown"}


def _no_cache(_proxy_id: str, _purge: Purge) -> int:
    return 0  # an API without a data plane (tests, tools) holds no cache


def _version() -> str:
    try:
        return version("portway")
    except PackageNotFoundError:
        return "0.0.0"


def _table(
    admin: AdminHandlers,
    proxies: ProxyHandlers,
    certs: CertificateHandlers,
    quotas: QuotaHandlers,
) -> list[tuple[str, list[tuple[Operation, Handler]]]]:
    """Every authenticated route: path → (operation doc, handler)."""
    o, s = Operation, schemas
    project, projects = (
        s.envelope("project", s.ProjectOut),
        s.envelope("projects", s.ProjectOut, many=True),
    )
    zone, zones = s.envelope("zone", s.ZoneOut), s.envelope("zones", s.ZoneOut, many=True)
    token, tokens = s.envelope("token", s.TokenOut), s.envelope("tokens", s.TokenOut, many=True)
    changes = s.envelope("changes", s.ChangeOut, many=True)
    proxy, proxy_list = (
        s.envelope("proxy", s.ProxyOut),
        s.envelope("proxies", s.ProxyOut, many=True),
    )
    backend, backends = (
        s.envelope("backend", s.BackendOut),
        s.envelope("backends", s.BackendOut, many=True),
    )
    cert = s.envelope("certificate", s.CertificateOut)
    purged = s.envelope("purge", s.PurgedOut)
    certs_out = s.envelope("certificates", s.CertificateOut, many=True)
    quota = s.envelope("quota", s.QuotaOut)
    return [
        ("/v1/projects", [
            (o("POST", "create a project (admin)", s.ProjectRequest, 201, project),
             admin.create_project),
            (o("GET", "list projects (admin)", response=projects), admin.list_projects),
        ]),
        ("/v1/projects/{name}", [
            (o("GET", "show a project", response=project), admin.show_project),
            (o("DELETE", "delete an empty project (admin)", status=204), admin.delete_project),
        ]),
        ("/v1/quotas/{project}", [
            (o("GET", "a project's quotas and use (admin)", response=quota), quotas.show),
            (o("PUT", "set a project's own quotas (admin)", s.QuotaRequest, response=quota),
             quotas.set),
        ]),
        ("/v1/zones", [
            (o("POST", "create a zone (admin)", s.ZoneRequest, 201, zone), admin.create_zone),
            (o("GET", "list the zones the caller may use", response=zones), admin.list_zones),
        ]),
        ("/v1/zones/{zone}", [
            (o("DELETE", "delete a zone (admin)", status=204), admin.delete_zone),
        ]),
        ("/v1/nodes", [
            (o("GET", "the tier's nodes as each last reported itself (admin)",
               response=s.envelope("nodes", s.NodeOut, many=True)), admin.list_nodes),
        ]),
        (P + "/tokens", [
            (o("POST", "create a token; the secret is shown once", s.TokenRequest, 201, token),
             admin.create_token),
            (o("GET", "list tokens (no secrets)", response=tokens), admin.list_tokens),
        ]),
        (P + "/tokens/{token}", [
            (o("DELETE", "revoke a token", status=204), admin.delete_token),
        ]),
        (P + "/changes", [
            (o("GET", "the project's audit trail, newest first", response=changes,
               query=(params.SINCE, params.LIMIT)), admin.list_changes),
        ]),
        (P + "/proxies", [
            (o("POST", "create a proxy", s.ProxyCreateRequest, 201, proxy), proxies.create),
            (o("GET", "list proxies", response=proxy_list, query=(params.HOSTNAME,)),
             proxies.list),
        ]),
        (PX, [
            (o("GET", "show a proxy (id or hostname)", response=proxy), proxies.show),
            (o("PATCH", "update a proxy", s.ProxyUpdateRequest, response=proxy),
             proxies.update),
            (o("DELETE", "delete a proxy", status=204), proxies.delete),
        ]),
        (PX + "/purge", [
            (o("POST", "drop cached responses (urls, prefixes, surrogate keys)",
               s.PurgeRequest, response=purged), proxies.purge),
        ]),
        (PX + "/backends", [
            (o("GET", "list backends with health", response=backends), proxies.list_backends),
            (o("POST", "associate a backend", s.BackendRequest, 201, backend),
             proxies.add_backend),
            (o("PUT", "replace the whole backend set", s.BackendsRequest, response=backends),
             proxies.replace_backends),
        ]),
        (PX + "/backends/{backend}", [
            (o("GET", "show a backend (id or address:port)", response=backend),
             proxies.show_backend),
            (o("PATCH", "change weight (0 drains) or backup", s.BackendUpdateRequest,
               response=backend), proxies.update_backend),
            (o("DELETE", "disassociate a backend", status=204), proxies.remove_backend),
        ]),
        (P + "/certificates", [
            (o("POST", "upload a certificate and its key (the key is never returned)",
               s.CertificateRequest, 201, cert), certs.create),
            (o("GET", "list certificates", response=certs_out), certs.list),
        ]),
        (P + "/certificates/{certificate}", [
            (o("GET", "show a certificate", response=cert), certs.show),
            (o("DELETE", "delete a certificate no proxy uses", status=204), certs.delete),
        ]),
    ]  # fmt: skip


def create_app(
    service: Service,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    backend_health: HealthFn | None = None,
    dataplane_status: PlaneFn | None = None,
    purge: PurgeFn | None = None,
    authenticate: TokenValidator | None = None,
    health_details: Callable[[], Mapping[str, Any]] | None = None,
    readiness: Callable[[], Readiness] | None = None,
) -> Starlette:
    """The v1 API and the dynamicproxy API over ``service``; ``backend_health(proxy_id,
    backend_id)`` supplies each backend's health fields (default ``{"health":
    "unknown"}``); ``dataplane_status(proxy_id, revision)`` each proxy's ``dataplane``
    field (what nginx or HAProxy made of it); ``authenticate`` checks tokens (default:
    Portway's own, the service); ``health_details`` adds fields to ``/healthz`` (the
    sources' states); ``readiness`` makes it answer 503, with the reasons, while the node
    is not ready for traffic."""
    auth: TokenValidator = authenticate or service
    table = _table(
        AdminHandlers(service),
        ProxyHandlers(
            service,
            backend_health or _unknown_health,
            dataplane_status or no_plane_status,
            purge or _no_cache,
        ),
        CertificateHandlers(service),
        QuotaHandlers(service),
    ) + dns_table(service)
    routes: list[BaseRoute] = [
        Route(
            path,
            endpoint(auth, {op.method: (op, h) for op, h in ops}),
            methods=[op.method for op, _ in ops],
        )
        for path, ops in table
    ]
    app_version = _version()
    native = [(path, [op for op, _ in ops]) for path, ops in table]
    document = build_openapi([*native, *dynamicproxy_operations()], app_version)

    async def discovery(request: Request) -> JSONResponse:
        base = str(request.base_url).rstrip("/")
        link = {"rel": "self", "href": f"{base}/v1/"}
        versions = [{"id": "v1", "status": "CURRENT", "links": [link]}]
        return JSONResponse({"versions": versions})

    async def healthz(_request: Request) -> JSONResponse:
        details = health_details() if health_details is not None else {}
        state = readiness() if readiness is not None else None
        body = {"status": "ok", "version": app_version, **details}
        if state is None:
            return JSONResponse(body)
        return JSONResponse({**body, **state.as_json()}, status_code=200 if state.ready else 503)

    async def openapi(_request: Request) -> JSONResponse:
        return JSONResponse(document)

    public = [
        Route("/", discovery, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
    ]
    return Starlette(
        routes=[*public, *extra_routes, *routes, *dynamicproxy_routes(service, auth)],
        exception_handlers=dict(EXCEPTION_HANDLERS),
    )
