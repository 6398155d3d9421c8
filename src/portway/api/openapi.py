"""The OpenAPI 3.1 document, built from the route table and the pydantic schemas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic.json_schema import models_json_schema

from portway.api import schemas

REF = "#/components/schemas/{model}"


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    summary: str
    request: type[pydantic.BaseModel] | None = None
    status: int = 200


def _params(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]


def _operation(path: str, op: Operation) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": REF.format(model="ErrorOut")}}}}
    doc: dict[str, Any] = {
        "summary": op.summary,
        "parameters": _params(path),
        "responses": {
            str(op.status): {"description": "success"},
            "default": {"description": "error", **error},
        },
    }
    if op.request is not None:
        schema = {"$ref": REF.format(model=op.request.__name__)}
        doc["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return doc


def build_openapi(
    routes: Sequence[tuple[str, Sequence[Operation]]], version: str
) -> dict[str, Any]:
    """An OpenAPI document describing ``routes`` (path → operations)."""
    models = [
        getattr(schemas, name)
        for name in dir(schemas)
        if isinstance(getattr(schemas, name), type)
        and issubclass(getattr(schemas, name), pydantic.BaseModel)
        and getattr(schemas, name) not in (pydantic.BaseModel, schemas.StrictIn)
    ]
    _, defs = models_json_schema(
        [(m, "validation") for m in models], ref_template=REF.replace("{model}", "{model}")
    )
    paths = {path: {op.method.lower(): _operation(path, op) for op in ops} for path, ops in routes}
    security: list[dict[str, list[str]]] = [{"token": []}, {"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Portway API", "version": version},
        "paths": paths,
        "security": security,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
