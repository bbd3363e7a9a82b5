"""The OpenAPI document, made to say what the service really answers.

FastAPI's own document calls every error its `HTTPValidationError` in application/json,
knows nothing of the API keys (read by hand for speed, not through FastAPI's security
classes) and leaves out what a route answers through its dependencies and the middleware.
`install` serves instead a document built from the same routes with RFC 9457 problems for
every error, the bearer scheme with the scope each operation needs, and the responses each
route can give by what it depends on.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from service.api.deps import get_session, scope_required_by
from service.api.problems import PROBLEM_JSON

SECURITY_SCHEME = "apiKey"
NUL_FREE = "^[^\\x00]*$"  # problems.RefuseNulInUrl refuses a NUL anywhere in the URL

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem: every error the API returns.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {
            "type": "string",
            "description": "`about:blank`, or `/problems/<kind>` naming the kind of problem.",
        },
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "What went wrong, for a person."},
        "errors": {
            "type": "array",
            "description": "Each fault in the request, where it is.",
            "items": {"$ref": "#/components/schemas/ProblemError"},
        },
    },
}
PROBLEM_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "pointer": {
            "type": "string",
            "description": "A JSON pointer (RFC 6901) into the body; empty for the whole body.",
        },
        "parameter": {"type": "string", "description": "The query parameter at fault."},
        "detail": {"type": "string"},
    },
}
BEARER_SCHEME: dict[str, Any] = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API key, as `Authorization: Bearer <key>`. Each operation names the "
    "scope it needs: `events:write`, `read`, `webhooks:manage` or `admin` (which holds "
    "every scope). `caseclock org create` prints an organisation's first admin key.",
}

INVALID = "The request is not valid: `errors` locate each fault."
UNAUTHENTICATED = "No API key was sent, or the key is unknown or revoked."
FORBIDDEN = "The API key lacks the scope this operation needs."
NOT_FOUND = "Nothing with this id in the key's organisation."
UNREADABLE = "The body cannot be read: JSON that is not UTF-8, or a broken multipart form."
TOO_LARGE = "The request body is over the size limit."
UNAVAILABLE = "The database could not complete the request and nothing was stored: try again."
PROBLEM_REF = "#/components/schemas/Problem"
_HEADER = {"schema": {"type": "string"}}


def install(app: FastAPI) -> None:
    """Serve the corrected document at the app's OpenAPI URL, and so to /docs and /redoc."""

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON body that the route reads and validates by hand."""
    schema = model.model_json_schema()
    return {"requestBody": {"content": {"application/json": {"schema": schema}}}}


def build_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document of the app's routes, with each operation corrected by `_correct`."""
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
        servers=app.servers,
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's, never sent
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["ProblemError"] = PROBLEM_ERROR_SCHEMA
    components["securitySchemes"] = {SECURITY_SCHEME: BEARER_SCHEME}
    for route in iter_route_contexts(app.routes):  # the routes of included routers too
        if isinstance(route.original_route, APIRoute) and route.include_in_schema:
            for method in route.methods or ():
                _correct(document["paths"][route.path_format][method.lower()], route.dependant)
    return document


def _correct(operation: dict[str, Any], dependant: Dependant) -> None:
    """Add what the route answers by its dependencies; make every error a problem."""
    responses: dict[str, Any] = operation.setdefault("responses", {})
    owed = {"422": INVALID} if operation.get("parameters") or "requestBody" in operation else {}
    scope = next(filter(None, map(scope_required_by, _calls(dependant))), None)
    if scope is not None:
        operation["security"] = [{SECURITY_SCHEME: [scope]}]
        owed |= {"401": UNAUTHENTICATED, "403": FORBIDDEN}
    if scope is not None or get_session in _calls(dependant):
        owed["503"] = UNAVAILABLE
    if dependant.path_params:
        owed["404"] = NOT_FOUND
    if "requestBody" in operation:
        owed |= {"400": UNREADABLE, "413": TOO_LARGE}
    for status, description in owed.items():
        response = responses.setdefault(status, {})
        # A description the route gave itself says more than the general one; FastAPI's
        # own 422 describes the error it would have sent.
        if response.get("description") in (None, "Validation Error"):
            response["description"] = description
    for status, response in responses.items():
        if status[0] in "45":
            response["content"] = {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}}
    if "401" in owed:
        responses["401"]["headers"] = {"WWW-Authenticate": _HEADER}
    if "503" in owed:
        responses["503"]["headers"] = {"Retry-After": _HEADER}
    for parameter in operation.get("parameters", []):
        schema = parameter["schema"] = _without_null(parameter["schema"])
        if schema.get("type") == "string" and not schema.keys() & {"pattern", "enum", "const"}:
            schema["pattern"] = NUL_FREE


def _calls(dependant: Dependant) -> Iterator[Any]:
    """Every dependency the route resolves, at any depth."""
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's schema without FastAPI's `null`: a URL cannot carry one, and
    leaving the parameter out is how a client says it has no value."""
    choices = [choice for choice in schema.get("anyOf", []) if choice != {"type": "null"}]
    if len(choices) != 1:
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**choices[0], **rest}
