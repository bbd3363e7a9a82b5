"""Events whose dates the working-day calendar cannot count from are refused, naming the field."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import Tenant

PAST_HORIZON = (
    "is after 31 December 2100, the last day the working-day calendar knows bank holidays for"
)


def task_due(due_at: str) -> dict[str, Any]:
    return {
        "id": "task-1",
        "type": "task_due",
        "case_id": "C-1",
        "occurred_at": "2026-11-02T10:15:00Z",
        "data": {"task_id": "T-1", "due_at": due_at, "title": "Chronology"},
    }


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


async def test_a_task_due_after_2100_is_refused_naming_its_due_date(tenant: Tenant) -> None:
    body = problem(await tenant.writer.post("/v1/events", json=task_due("2101-01-04")))

    assert [(e["pointer"], e["detail"]) for e in body["errors"]] == [("/data/due_at", PAST_HORIZON)]


async def test_a_refused_task_opens_no_obligation(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=task_due("2101-01-04"))

    assert (await tenant.reader.get("/v1/obligations")).json()["items"] == []


async def test_a_task_due_on_the_last_day_of_2100_is_accepted(tenant: Tenant) -> None:
    response = await tenant.writer.post("/v1/events", json=task_due("2100-12-31"))
    assert response.status_code == 201, response.text

    items = (await tenant.reader.get("/v1/obligations")).json()["items"]
    assert [o["due_at"] for o in items] == ["2100-12-31T23:59:59.999999Z"]


async def test_a_batch_refuses_only_the_item_dated_past_2100(tenant: Tenant) -> None:
    later = {**task_due("2101-01-04"), "id": "task-2"}
    response = await tenant.writer.post(
        "/v1/events/batch", json={"events": [task_due("2026-12-01"), later]}
    )

    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "invalid"]
    assert results[1]["errors"] == [{"pointer": "/events/1/data/due_at", "detail": PAST_HORIZON}]
