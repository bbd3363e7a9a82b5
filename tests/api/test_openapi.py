"""The OpenAPI document says what the service answers, and every resource takes HEAD and
OPTIONS as RFC 9110 asks."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from conftest import Tenant

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in doc["paths"].items()
        for method, operation in item.items()
    ]


def parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [p for p in operation["parameters"] if p["name"] == name]
    schema: dict[str, Any] = found["schema"]
    return schema


async def test_every_error_an_operation_documents_is_a_problem(tenant: Tenant) -> None:
    doc = await document(tenant.anonymous)
    for method, path, operation in operations(doc):
        for status, response in operation["responses"].items():
            if status[0] in "45":
                assert response["content"] == PROBLEM, f"{method} {path} {status}"
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
    ]


async def test_the_bearer_scheme_is_declared_so_the_docs_offer_to_authorize(
    tenant: Tenant,
) -> None:
    schemes = (await document(tenant.anonymous))["components"]["securitySchemes"]
    assert list(schemes) == ["apiKey"]
    assert schemes["apiKey"]["type"] == "http"
    assert schemes["apiKey"]["scheme"] == "bearer"


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("POST", "/v1/events", "events:write"),
        ("GET", "/v1/obligations", "read"),
        ("PUT", "/v1/rules", "admin"),
        ("POST", "/v1/webhooks", "webhooks:manage"),
        ("POST", "/v1/imports/annex-a", "events:write"),
    ],
)
async def test_each_protected_operation_names_its_scope_and_its_auth_failures(
    tenant: Tenant, method: str, path: str, scope: str
) -> None:
    operation = (await document(tenant.anonymous))["paths"][path][method.lower()]
    assert operation["security"] == [{"apiKey": [scope]}]
    assert {"401", "403", "503"} <= operation["responses"].keys()
    assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
    assert "Retry-After" in operation["responses"]["503"]["headers"]


async def test_the_probes_need_no_key(tenant: Tenant) -> None:
    paths = (await document(tenant.anonymous))["paths"]
    for path in ("/healthz", "/readyz", "/metrics"):
        assert "security" not in paths[path]["get"]
        assert "401" not in paths[path]["get"]["responses"]
    assert "503" in paths["/readyz"]["get"]["responses"]


async def test_operations_document_404_for_ids_422_for_input_and_400_and_413_for_bodies(
    tenant: Tenant,
) -> None:
    doc = await document(tenant.anonymous)
    for method, path, operation in operations(doc):
        responses = operation["responses"]
        assert ("404" in responses) == ("{" in path), f"{method} {path}"
        has_body = "requestBody" in operation
        assert ("413" in responses) == has_body, f"{method} {path}"
        assert ("400" in responses) == has_body, f"{method} {path}"
        takes_input = has_body or bool(operation.get("parameters"))
        assert ("422" in responses) == takes_input, f"{method} {path}"
    assert "409" in doc["paths"]["/v1/events"]["post"]["responses"]
    assert "415" in doc["paths"]["/v1/imports/annex-a"]["post"]["responses"]


async def test_an_event_body_is_documented_field_by_field(tenant: Tenant) -> None:
    operation = (await document(tenant.anonymous))["paths"]["/v1/events"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"id", "type", "case_id", "occurred_at"}
    assert set(schema["properties"]) == {
        "id",
        "type",
        "case_id",
        "occurred_at",
        "worker_id",
        "team_id",
        "data",
    }
    assert schema["properties"]["occurred_at"]["anyOf"] == [
        {"format": "date-time"},
        {"format": "date"},
    ]
    duplicate = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert duplicate == {"$ref": "#/components/schemas/IngestResult"}


INSTANTS = [
    "2026-11-02",
    "2026-11-02T10:15:00Z",
    "2026-11-02T10:15:00+01:00",
    "1900-01-01",
    "1900-01-01T00:30:00+01:00",
    "2999-12-31T23:30:00-01:00",
    "1899-12-31",
    "3000-01-01",
    "0001-01-01T00:00:00Z",
    "9999-12-31",
]


@pytest.mark.parametrize("value", INSTANTS)
async def test_the_as_of_pattern_admits_exactly_the_years_the_api_accepts(
    tenant: Tenant, value: str
) -> None:
    operation = (await document(tenant.anonymous))["paths"]["/v1/obligations"]["get"]
    schema = parameter(operation, "as_of")
    assert schema["anyOf"] == [{"format": "date-time"}, {"format": "date"}]
    response = await tenant.reader.get("/v1/obligations", params={"as_of": value})
    documented = re.search(schema["pattern"], value) is not None
    assert (response.status_code == 200) == documented, response.text


STATUS_FILTERS = [
    "overdue",
    "due_soon,overdue",
    " met , met_late ",
    "overdue,,",
    "overdue met",
    "late",
    "",
    ",",
]


@pytest.mark.parametrize("value", STATUS_FILTERS)
async def test_the_status_pattern_admits_exactly_the_filters_the_api_accepts(
    tenant: Tenant, value: str
) -> None:
    operation = (await document(tenant.anonymous))["paths"]["/v1/obligations"]["get"]
    pattern = parameter(operation, "status")["pattern"]
    response = await tenant.reader.get("/v1/obligations", params={"status": value})
    assert (response.status_code == 200) == (re.search(pattern, value) is not None)


async def test_a_cursor_the_api_gives_matches_the_documented_cursor(tenant: Tenant) -> None:
    for number in range(2):
        event = {
            "id": f"cms-{number}",
            "type": "referral_received",
            "case_id": "C-1",
            "occurred_at": f"2026-11-0{number + 2}T10:00:00Z",
        }
        assert (await tenant.writer.post("/v1/events", json=event)).status_code == 201
    page = (await tenant.reader.get("/v1/events", params={"limit": 1})).json()
    operation = (await document(tenant.anonymous))["paths"]["/v1/events"]["get"]
    assert re.fullmatch(parameter(operation, "cursor")["pattern"], page["next_cursor"])


async def test_optional_query_parameters_are_not_documented_as_null(tenant: Tenant) -> None:
    doc = await document(tenant.anonymous)
    for method, path, operation in operations(doc):
        for documented in operation.get("parameters", []):
            assert {"type": "null"} not in documented["schema"].get("anyOf", []), (
                f"{method} {path} {documented['name']}"
            )


async def test_options_answers_with_every_method_of_the_resource(tenant: Tenant) -> None:
    response = await tenant.anonymous.options("/v1/rules")
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, PUT"
    assert response.content == b""


async def test_options_on_a_path_written_in_full_is_not_answered_for_a_template(
    tenant: Tenant,
) -> None:
    # /v1/imports/{import_id} matches this path too, but names no resource there.
    response = await tenant.anonymous.options("/v1/imports/annex-a")
    assert response.headers["allow"] == "OPTIONS, POST"


async def test_options_on_an_unknown_path_is_a_404_problem(tenant: Tenant) -> None:
    response = await tenant.anonymous.options("/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_wrong_method_is_a_405_naming_every_method_of_the_resource(
    tenant: Tenant,
) -> None:
    response = await tenant.admin.delete("/v1/rules")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, PUT"


async def test_head_answers_as_get_would_without_the_body(tenant: Tenant) -> None:
    got = await tenant.reader.get("/v1/obligations")
    head = await tenant.reader.head("/v1/obligations")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == got.headers["content-length"]


async def test_head_without_a_key_is_refused_as_get_would_be(tenant: Tenant) -> None:
    response = await tenant.anonymous.head("/v1/obligations")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.content == b""


async def test_head_where_there_is_no_get_is_a_405(tenant: Tenant) -> None:
    response = await tenant.writer.head("/v1/events/batch")
    assert response.status_code == 405
    assert response.headers["allow"] == "OPTIONS, POST"


@pytest.mark.parametrize(
    ("page", "asset"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]
)
async def test_the_docs_pages_load_their_scripts_from_the_service(
    tenant: Tenant, page: str, asset: str
) -> None:
    html = (await tenant.anonymous.get(page)).text
    sources = re.findall(r'src="([^"]+)"', html)
    assert f"/docs/assets/{asset}" in sources
    assert not [url for url in re.findall(r'(?:src|href)="([^"]+)"', html) if "//" in url]
    script = await tenant.anonymous.get(f"/docs/assets/{asset}")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
