"""Every error is RFC 9457 problem+json, FastAPI's own included."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from conftest import Tenant

MIB = 1024 * 1024


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str)
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    return body


async def test_an_unknown_path_is_a_404_problem(tenant: Tenant) -> None:
    body = problem(await tenant.reader.get("/v1/nothing-here"), 404)
    assert body["title"] == "Not Found"


async def test_a_wrong_method_is_a_405_problem_naming_the_allowed_ones(tenant: Tenant) -> None:
    response = await tenant.reader.delete("/v1/obligations")
    problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_a_bad_query_parameter_is_a_422_problem_naming_it(tenant: Tenant) -> None:
    body = problem(await tenant.reader.get("/v1/obligations", params={"limit": "many"}), 422)
    assert body["errors"][0]["parameter"] == "limit"


async def test_a_body_that_is_not_json_is_a_422_problem_about_the_whole_document(
    tenant: Tenant,
) -> None:
    response = await tenant.writer.post(
        "/v1/events", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    (error,) = problem(response, 422)["errors"]
    assert error["pointer"] == ""
    assert error["detail"].startswith("not valid JSON")


async def test_a_missing_body_is_a_422_problem_about_the_whole_document(tenant: Tenant) -> None:
    (error,) = problem(await tenant.writer.post("/v1/events"), 422)["errors"]
    assert error["pointer"] == ""


async def test_a_nul_in_the_query_is_a_422_problem(tenant: Tenant) -> None:
    response = await tenant.reader.get("/v1/obligations", params={"case_id": "C-1\x00"})
    problem(response, 422)


async def test_a_nul_in_the_path_is_a_422_problem(tenant: Tenant) -> None:
    problem(await tenant.reader.get("/v1/cases/C-1%00"), 422)


async def test_a_body_over_5_mib_is_a_413_problem(tenant: Tenant) -> None:
    events = [{"id": f"e-{i}", "data": {"padding": "x" * 1024}} for i in range(5 * 1024 + 10)]
    content = json.dumps({"events": events}).encode()
    assert len(content) > 5 * MIB
    response = await tenant.writer.post(
        "/v1/events/batch", content=content, headers={"Content-Type": "application/json"}
    )
    problem(response, 413)


async def test_a_body_over_5_mib_is_refused_before_it_is_read(tenant: Tenant) -> None:
    content = b'{"events": ["' + b"x" * (5 * MIB) + b'"]}'
    response = await tenant.anonymous.post(
        "/v1/events/batch", content=content, headers={"Content-Type": "application/json"}
    )
    problem(response, 413)


async def test_a_streamed_body_over_5_mib_without_a_length_is_a_413_problem(
    tenant: Tenant,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"events": ["'
        for _ in range(6):
            yield b"x" * MIB
        yield b'"]}'

    response = await tenant.writer.post(
        "/v1/events/batch", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    problem(response, 413)


async def test_a_ruleset_over_5_mib_is_a_413_problem(tenant: Tenant) -> None:
    content = "# padding\n" * (MIB // 2 + 1)
    response = await tenant.admin.put(
        "/v1/rules", content=content, headers={"Content-Type": "application/toml"}
    )
    problem(response, 413)


async def test_a_body_just_under_5_mib_is_read(tenant: Tenant) -> None:
    # Each event's data within its own 64 KiB limit; together just under the body limit.
    events = [
        {
            "id": f"big-{i}",
            "type": "referral_received",
            "case_id": f"C-{i}",
            "occurred_at": "2026-11-02T10:15:00Z",
            "data": {"note": "x" * 64_000},
        }
        for i in range(81)
    ]
    content = json.dumps({"events": events}).encode()
    assert 5 * MIB - 100_000 < len(content) < 5 * MIB
    response = await tenant.writer.post(
        "/v1/events/batch", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text[:200]
    assert {result["status"] for result in response.json()["results"]} == {"created"}


async def test_a_validation_problem_has_a_type_uri_and_errors(tenant: Tenant) -> None:
    body = problem(await tenant.writer.post("/v1/events", json={}), 422)
    assert body["type"] == "/problems/validation"
    assert all({"pointer", "detail"} <= set(e) for e in body["errors"])


async def test_the_openapi_document_is_served(tenant: Tenant) -> None:
    response = await tenant.anonymous.get("/openapi.json")
    assert response.status_code == 200
    assert "/v1/events" in response.json()["paths"]
