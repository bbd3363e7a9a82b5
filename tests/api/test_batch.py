"""POST /v1/events/batch: per-item results in request order; valid items commit regardless."""

from __future__ import annotations

from typing import Any

import httpx
from conftest import Tenant


def referral(event_id: str, case_id: str = "C-1", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": event_id,
        "type": "referral_received",
        "case_id": case_id,
        "occurred_at": "2026-11-02T10:15:00Z",
        "data": {},
    }
    body.update(fields)
    return body


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def stored_ids(tenant: Tenant) -> list[str]:
    response = await tenant.reader.get("/v1/events", params={"limit": 1000})
    return sorted(e["id"] for e in response.json()["items"])


async def test_a_batch_reports_each_item_in_request_order(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=referral("old"))
    await tenant.writer.post("/v1/events", json=referral("taken"))
    events = [
        referral("new-1"),
        referral("old"),
        referral("taken", case_id="C-9"),
        referral("bad", occurred_at="2026-11-02T10:15:00"),
        referral("new-2", case_id="C-2"),
    ]
    response = await tenant.writer.post("/v1/events/batch", json={"events": events})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [(r["id"], r["status"]) for r in results] == [
        ("new-1", "created"),
        ("old", "duplicate"),
        ("taken", "conflict"),
        ("bad", "invalid"),
        ("new-2", "created"),
    ]


async def test_only_invalid_items_carry_errors(tenant: Tenant) -> None:
    events = [referral("good"), referral("bad", type="nonsense")]
    results = (await tenant.writer.post("/v1/events/batch", json={"events": events})).json()[
        "results"
    ]
    assert "errors" not in results[0]
    assert results[1]["errors"][0]["pointer"] == "/events/1/type"


async def test_valid_items_commit_even_when_others_are_invalid(tenant: Tenant) -> None:
    events = [referral("a"), referral("b", case_id=""), referral("c", case_id="C-2")]
    await tenant.writer.post("/v1/events/batch", json={"events": events})
    assert await stored_ids(tenant) == ["a", "c"]


async def test_valid_items_are_derived_when_others_are_invalid(tenant: Tenant) -> None:
    events = [referral("bad", type="nonsense"), referral("good", case_id="C-7")]
    await tenant.writer.post("/v1/events/batch", json={"events": events})
    response = await tenant.reader.get("/v1/obligations", params={"case_id": "C-7"})
    assert len(response.json()["items"]) == 3


async def test_an_invalid_item_is_located_by_its_index_and_field(tenant: Tenant) -> None:
    events = [referral(f"e-{i}") for i in range(3)]
    events.append(referral("e-3", occurred_at="2026-11-02T10:15:00"))
    results = (await tenant.writer.post("/v1/events/batch", json={"events": events})).json()[
        "results"
    ]
    assert results[3]["errors"] == [
        {"pointer": "/events/3/occurred_at", "detail": results[3]["errors"][0]["detail"]}
    ]


async def test_data_errors_in_a_batch_point_into_the_item_data(tenant: Tenant) -> None:
    decision = referral("d", type="referral_decision_made", data={"outcome": "perhaps"})
    results = (
        await tenant.writer.post("/v1/events/batch", json={"events": [referral("r"), decision]})
    ).json()["results"]
    assert [e["pointer"] for e in results[1]["errors"]] == ["/events/1/data/outcome"]


async def test_a_missing_field_in_a_batch_item_is_located(tenant: Tenant) -> None:
    item = referral("m")
    del item["case_id"]
    results = (await tenant.writer.post("/v1/events/batch", json={"events": [item]})).json()[
        "results"
    ]
    assert results == [
        {"id": "m", "status": "invalid", "errors": [results[0]["errors"][0]]},
    ]
    assert results[0]["errors"][0]["pointer"] == "/events/0/case_id"


async def test_a_batch_item_whose_case_id_is_only_spaces_is_invalid_and_the_rest_commit(
    tenant: Tenant,
) -> None:
    events = [referral("ok"), referral("blank", case_id=" \N{NO-BREAK SPACE} ")]
    results = (await tenant.writer.post("/v1/events/batch", json={"events": events})).json()[
        "results"
    ]
    assert [r["status"] for r in results] == ["created", "invalid"]
    assert results[1]["errors"] == [
        {"pointer": "/events/1/case_id", "detail": "must not be empty or only spaces"}
    ]
    assert await stored_ids(tenant) == ["ok"]


async def test_an_id_repeated_in_one_batch_with_the_same_content_is_a_duplicate(
    tenant: Tenant,
) -> None:
    events = [referral("x"), referral("x")]
    results = (await tenant.writer.post("/v1/events/batch", json={"events": events})).json()[
        "results"
    ]
    assert [r["status"] for r in results] == ["created", "duplicate"]


async def test_an_id_repeated_in_one_batch_with_other_content_is_a_conflict(
    tenant: Tenant,
) -> None:
    events = [referral("x"), referral("x", case_id="C-2")]
    results = (await tenant.writer.post("/v1/events/batch", json={"events": events})).json()[
        "results"
    ]
    assert [r["status"] for r in results] == ["created", "conflict"]
    assert await stored_ids(tenant) == ["x"]


async def test_a_batch_of_a_thousand_events_is_accepted(tenant: Tenant) -> None:
    events = [referral(f"e-{i:04}", case_id=f"C-{i % 50}") for i in range(1000)]
    response = await tenant.writer.post("/v1/events/batch", json={"events": events})
    assert response.status_code == 200
    assert {r["status"] for r in response.json()["results"]} == {"created"}


async def test_an_empty_batch_is_refused(tenant: Tenant) -> None:
    response = await tenant.writer.post("/v1/events/batch", json={"events": []})
    body = problem(response, 422)
    assert body["errors"][0]["pointer"] == "/events"


async def test_a_batch_of_1001_events_is_refused_and_stores_nothing(tenant: Tenant) -> None:
    events = [referral(f"e-{i:04}") for i in range(1001)]
    response = await tenant.writer.post("/v1/events/batch", json={"events": events})
    body = problem(response, 422)
    assert body["errors"][0]["pointer"] == "/events"
    assert await stored_ids(tenant) == []


async def test_a_batch_without_an_events_list_is_refused(tenant: Tenant) -> None:
    response = await tenant.writer.post("/v1/events/batch", json={"items": []})
    problem(response, 422)


async def test_a_batch_item_that_is_not_an_object_is_reported_invalid(tenant: Tenant) -> None:
    response = await tenant.writer.post(
        "/v1/events/batch", json={"events": [referral("ok"), "nonsense"]}
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "invalid"]
    assert results[1]["errors"][0]["pointer"] == "/events/1"


async def test_backfill_must_be_a_json_boolean(tenant: Tenant) -> None:
    body = {"backfill": 0, "events": [referral("e1")]}
    response = await tenant.writer.post("/v1/events/batch", json=body)
    assert response.status_code == 422
