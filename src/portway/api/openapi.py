"""The OpenAPI 3.1 document, built from the route table, the parameter declarations and
the pydantic schemas: what it says the server accepts is what the server checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from portway.api import schemas
from portway.api.body import MAX_BODY, MAX_DEPTH
from portway.api.params import QueryParam, path_schema

REF = "#/components/schemas/{model}"
ERRORS = {
    400: f"malformed: not JSON, nested over {MAX_DEPTH} levels, a wrong type, an unknown field",
    401: "no token, or a bad one",
    403: "the token's role may not do this",
    404: "not found, or another project's",
    409: "a conflict with what exists",
    413: f"the body is larger than {MAX_BODY} bytes",
    422: "a value breaks a rule or a limit (`field` names it)",
}


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    summary: str
    request: type[pydantic.BaseModel] | None = None
    status: int = 200
    response: type[pydantic.BaseModel] | None = None
    query: tuple[QueryParam, ...] = ()
    # The dynamicproxy API's (compat.md §1): success is this exact text, not JSON, and
    # some errors are the original's texts (``Invalid domain``, ``No such domain``).
    text: str | None = None
    text_errors: tuple[int, ...] = ()


def _params(path: str, op: Operation) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    found = [{"name": n, "in": "path", "required": True, "schema": path_schema(n)} for n in names]
    return found + [
        {"name": q.name, "in": "query", "description": q.description, "schema": q.schema()}
        for q in op.query
    ]


def _error_statuses(op: Operation) -> list[int]:
    statuses = [400, 401, 403, 404, 422]
    if op.method != "GET":
        statuses.append(409)
    if op.request is not None:
        statuses.append(413)
    return sorted(statuses)


def _json(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}


def _text(value: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if value is not None:
        schema["const"] = value
    return {"schema": schema}


def _operation(path: str, op: Operation) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "success"}
    if op.response is not None:
        success["content"] = _json(op.response)
    elif op.text is not None:
        success["content"] = {"text/html": _text(op.text)}
    responses = {str(op.status): success}
    for status in _error_statuses(op):
        content = _json(schemas.ErrorOut)
        if status in op.text_errors:
            content["text/plain"] = _text()
        responses[str(status)] = {"description": ERRORS[status], "content": content}
    doc: dict[str, Any] = {
        "summary": op.summary,
        "parameters": _params(path, op),
        "responses": responses,
    }
    if op.request is not None:
        doc["requestBody"] = {"required": True, "content": _json(op.request)}
    return doc


def _components(
    routes: Sequence[tuple[str, Sequence[Operation]]],
) -> dict[str, Any]:
    wanted: dict[type[pydantic.BaseModel], JsonSchemaMode] = {schemas.ErrorOut: "serialization"}
    for _, ops in routes:
        for op in ops:
            if op.request is not None:
                wanted[op.request] = "validation"
            if op.response is not None:
                wanted[op.response] = "serialization"
    _, defs = models_json_schema(list(wanted.items()), ref_template=REF)
    found: dict[str, Any] = defs.get("$defs", {})
    return found


def build_openapi(
    routes: Sequence[tuple[str, Sequence[Operation]]], version: str
) -> dict[str, Any]:
    """An OpenAPI document describing ``routes`` (path → operations)."""
    paths = {path: {op.method.lower(): _operation(path, op) for op in ops} for path, ops in routes}
    security: list[dict[str, list[str]]] = [{"token": []}, {"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Portway API", "version": version},
        "paths": paths,
        "security": security,
        "components": {
            "schemas": _components(routes),
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
