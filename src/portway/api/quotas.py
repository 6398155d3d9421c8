"""v1 handlers for per-project quotas (admins only; the rules: service/quota_check.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.responses import JSONResponse, Response

from portway.api import schemas
from portway.api.endpoint import Call
from portway.model.quota import Quota
from portway.service import Service


class QuotaHandlers:
    def __init__(self, service: Service) -> None:
        self.service = service

    def show(self, call: Call) -> Response:
        return self._out(call.params["project"], call)

    def set(self, call: Call) -> Response:
        body = call.parse(schemas.QuotaRequest).quota
        project = call.params["project"]
        self.service.set_quota(call.actor, project, Quota(**body.model_dump()))
        return self._out(project, call)

    def _out(self, project: str, call: Call) -> Response:
        own, limits, in_use = self.service.get_quota(call.actor, project)
        out: dict[str, Any] = {
            "project": project,
            "limits": dataclasses.asdict(limits),
            "own": dataclasses.asdict(own),
            "in_use": in_use,
        }
        body = schemas.QuotaOut.model_validate(out).model_dump(mode="json")
        return JSONResponse({"quota": body})
