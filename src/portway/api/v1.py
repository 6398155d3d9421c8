"""v1 handlers for projects, tokens, zones and the change log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.responses import JSONResponse, Response

from portway.api import convert, schemas
from portway.api.endpoint import Call
from portway.service import Service


def _json(body: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


class AdminHandlers:
    """Projects, tokens, zones, changes: thin adapters over the service."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def create_project(self, call: Call) -> Response:
        body = call.parse(schemas.ProjectRequest).project
        project = self.service.create_project(call.actor, body.name)
        return _json({"project": convert.project_out(project)}, 201)

    def list_projects(self, call: Call) -> Response:
        projects = self.service.list_projects(call.actor)
        return _json({"projects": [convert.project_out(p) for p in projects]})

    def show_project(self, call: Call) -> Response:
        project = self.service.get_project(call.actor, call.params["name"])
        return _json({"project": convert.project_out(project)})

    def delete_project(self, call: Call) -> Response:
        self.service.delete_project(call.actor, call.params["name"])
        return Response(status_code=204)

    def create_token(self, call: Call) -> Response:
        body = call.parse(schemas.TokenRequest).token
        token, secret = self.service.create_token(
            call.actor, call.params["project"], convert.role(body.role), body.description
        )
        return _json({"token": convert.token_out(token, secret)}, 201)

    def list_tokens(self, call: Call) -> Response:
        tokens = self.service.list_tokens(call.actor, call.params["project"])
        return _json({"tokens": [convert.token_out(t) for t in tokens]})

    def delete_token(self, call: Call) -> Response:
        self.service.delete_token(call.actor, call.params["project"], call.params["token"])
        return Response(status_code=204)

    def create_zone(self, call: Call) -> Response:
        body = call.parse(schemas.ZoneRequest).zone
        zone = self.service.create_zone(
            call.actor,
            body.name,
            project=body.project,
            shared=body.shared,
            shared_host=body.shared_host,
            default=body.default,
            deprecated=body.deprecated,
        )
        return _json({"zone": convert.zone_out(zone)}, 201)

    def list_zones(self, call: Call) -> Response:
        zones = self.service.list_zones(call.actor)
        return _json({"zones": [convert.zone_out(z) for z in zones]})

    def delete_zone(self, call: Call) -> Response:
        self.service.delete_zone(call.actor, call.params["zone"])
        return Response(status_code=204)

    def list_nodes(self, call: Call) -> Response:
        now = datetime.now(UTC)
        nodes = self.service.list_nodes(call.actor)
        return _json({"nodes": [convert.node_out(n, now) for n in nodes]})

    def list_changes(self, call: Call) -> Response:
        changes = self.service.list_changes(
            call.actor,
            call.params["project"],
            since=call.query["since"],
            limit=call.query["limit"],
        )
        return _json({"changes": [convert.change_out(c) for c in changes]})
