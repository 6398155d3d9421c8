"""v1 handlers for proxies and their backends."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from portway.api import convert, schemas
from portway.api.convert import HealthFn, PlaneFn, PurgeFn
from portway.api.endpoint import Call
from portway.service import ProxyBackend, Service


class ProxyHandlers:
    def __init__(self, service: Service, health: HealthFn, plane: PlaneFn, purge: PurgeFn) -> None:
        self.service = service
        self.health = health
        self.plane = plane
        self.purger = purge

    def _proxy(self, proxy: Any, status: int = 200) -> JSONResponse:
        out = convert.proxy_out(proxy, self.health, self.plane)
        return JSONResponse({"proxy": out}, status_code=status)

    def _backends(self, proxy_id: str, backends: Any) -> JSONResponse:
        out = [convert.backend_out(proxy_id, b, self.health) for b in backends]
        return JSONResponse({"backends": out})

    def create(self, call: Call) -> Response:
        draft, backends = convert.proxy_draft(call.parse(schemas.ProxyCreateRequest).proxy)
        proxy = self.service.create_proxy(call.actor, call.params["project"], draft, backends)
        return self._proxy(proxy, 201)

    def list(self, call: Call) -> Response:
        proxies = self.service.list_proxies(
            call.actor, call.params["project"], hostname=call.query["hostname"]
        )
        out = [convert.proxy_out(p, self.health, self.plane) for p in proxies]
        return JSONResponse({"proxies": out})

    def show(self, call: Call) -> Response:
        return self._proxy(self._get(call))

    def update(self, call: Call) -> Response:
        changes = convert.proxy_changes(call.parse(schemas.ProxyUpdateRequest).proxy)
        p = call.params
        return self._proxy(self.service.update_proxy(call.actor, p["project"], p["proxy"], changes))

    def delete(self, call: Call) -> Response:
        self.service.delete_proxy(call.actor, call.params["project"], call.params["proxy"])
        return Response(status_code=204)

    def purge(self, call: Call) -> Response:
        """Drop cached responses of this proxy on every data plane (member role)."""
        wanted = convert.purge(call.parse(schemas.PurgeRequest).purge)
        p = call.params
        proxy = self.service.purgeable_proxy(call.actor, p["project"], p["proxy"])
        return JSONResponse({"purge": {"purged": self.purger(proxy.id, wanted)}})

    def _get(self, call: Call) -> Any:
        return self.service.get_proxy(call.actor, call.params["project"], call.params["proxy"])

    def _backend(self, found: ProxyBackend, status: int = 200) -> JSONResponse:
        out = convert.backend_out(found.proxy_id, found.backend, self.health)
        return JSONResponse({"backend": out}, status_code=status)

    def list_backends(self, call: Call) -> Response:
        proxy = self._get(call)
        return self._backends(proxy.id, proxy.backends)

    # Writes answer with what the service returns from their own transaction: a second
    # read could meet a delete committed in between and turn a done write into a 404.
    def add_backend(self, call: Call) -> Response:
        spec = convert.backend_spec(call.parse(schemas.BackendRequest).backend)
        p = call.params
        return self._backend(
            self.service.add_backend(call.actor, p["project"], p["proxy"], spec), 201
        )

    def replace_backends(self, call: Call) -> Response:
        specs = [convert.backend_spec(b) for b in call.parse(schemas.BackendsRequest).backends]
        p = call.params
        proxy = self.service.replace_backends(call.actor, p["project"], p["proxy"], specs)
        return self._backends(proxy.id, proxy.backends)

    def show_backend(self, call: Call) -> Response:
        p = call.params
        return self._backend(
            self.service.get_backend(call.actor, p["project"], p["proxy"], p["backend"])
        )

    def update_backend(self, call: Call) -> Response:
        body = call.parse(schemas.BackendUpdateRequest).backend
        p = call.params
        found = self.service.update_backend(
            call.actor,
            p["project"],
            p["proxy"],
            p["backend"],
            weight=body.weight,
            backup=body.backup,
        )
        return self._backend(found)

    def remove_backend(self, call: Call) -> Response:
        p = call.params
        self.service.remove_backend(call.actor, p["project"], p["proxy"], p["backend"])
        return Response(status_code=204)
