"""POST /v1/events: idempotent ingest, validation as problem+json, read-your-writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import FixedClock, Tenant


def referral(event_id: str = "ev-1", case_id: str = "C-1", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": event_id,
        "type": "referral_received",
        "case_id": case_id,
        "occurred_at": "2026-11-02T10:15:00Z",
        "worker_id": "W-17",
        "team_id": "T-3",
        "data": {},
    }
    body.update(fields)
    return body


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= set(body)
    return body


def pointers(body: dict[str, Any]) -> set[str]:
    return {error["pointer"] for error in body["errors"]}


async def test_a_new_event_is_created_with_201(tenant: Tenant) -> None:
    response = await tenant.writer.post("/v1/events", json=referral())
    assert response.status_code == 201
    assert response.json() == {"id": "ev-1", "status": "created"}


async def test_an_events_data_reads_back_exactly_as_posted(tenant: Tenant) -> None:
    data = {
        "outcome": "assessment",
        "notes": ["seen at school", ["twice", 2, 1.5]],
        "flags": {"urgent": True, "interpreter": None},
        "name_free": "Zoë's café, ✓ (no personal data)",
        "empty": [],
    }
    await tenant.writer.post("/v1/events", json=referral(data=data))
    await tenant.writer.post(
        "/v1/events/batch", json={"events": [referral("ev-2", "C-2", data=data)]}
    )
    response = await tenant.reader.get("/v1/events")
    assert [item["data"] for item in response.json()["items"]] == [data, data]


async def test_posting_the_same_event_again_is_a_200_duplicate(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=referral())
    response = await tenant.writer.post("/v1/events", json=referral())
    assert response.status_code == 200
    assert response.json() == {"id": "ev-1", "status": "duplicate"}


async def test_the_same_instant_in_another_offset_is_still_a_duplicate(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=referral())
    again = referral(occurred_at="2026-11-02T11:15:00+01:00")
    response = await tenant.writer.post("/v1/events", json=again)
    assert response.status_code == 200
    assert response.json()["status"] == "duplicate"


async def test_the_same_id_with_different_content_is_a_409_problem(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=referral())
    response = await tenant.writer.post("/v1/events", json=referral(worker_id="W-99"))
    body = problem(response, 409)
    assert "ev-1" in body["detail"]


async def test_a_conflicting_repost_leaves_the_stored_event_unchanged(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=referral())
    await tenant.writer.post("/v1/events", json=referral(worker_id="W-99"))
    events = (await tenant.reader.get("/v1/events", params={"case_id": "C-1"})).json()["items"]
    assert [e["worker_id"] for e in events] == ["W-17"]


async def test_a_datetime_without_an_offset_is_a_422_pointing_at_occurred_at(
    tenant: Tenant,
) -> None:
    response = await tenant.writer.post(
        "/v1/events", json=referral(occurred_at="2026-11-02T10:15:00")
    )
    body = problem(response, 422)
    assert pointers(body) == {"/occurred_at"}


async def test_an_event_more_than_five_minutes_in_the_future_is_refused(
    tenant: Tenant, clock: FixedClock
) -> None:
    clock.now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    response = await tenant.writer.post(
        "/v1/events", json=referral(occurred_at="2026-11-20T12:05:01Z")
    )
    body = problem(response, 422)
    assert pointers(body) == {"/occurred_at"}


async def test_an_event_up_to_five_minutes_ahead_of_the_clock_is_accepted(
    tenant: Tenant, clock: FixedClock
) -> None:
    clock.now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    response = await tenant.writer.post(
        "/v1/events", json=referral(occurred_at="2026-11-20T12:05:00Z")
    )
    assert response.status_code == 201


async def test_a_plain_date_in_the_future_is_judged_by_its_local_midnight(
    tenant: Tenant, clock: FixedClock
) -> None:
    clock.now = datetime(2026, 11, 20, 23, 58, tzinfo=UTC)
    response = await tenant.writer.post("/v1/events", json=referral(occurred_at="2026-11-21"))
    assert response.status_code == 201


async def test_an_occurred_at_in_a_far_off_year_is_refused(tenant: Tenant) -> None:
    response = await tenant.writer.post(
        "/v1/events", json=referral(occurred_at="0001-01-01T00:00:00+01:00")
    )
    body = problem(response, 422)
    assert pointers(body) == {"/occurred_at"}


async def test_a_due_date_in_data_in_a_far_off_year_is_refused(tenant: Tenant) -> None:
    task = referral(
        type="task_due",
        data={"task_id": "T-1", "title": "Visit", "due_at": "9999-12-31T23:59:59-05:00"},
    )
    body = problem(await tenant.writer.post("/v1/events", json=task), 422)
    assert pointers(body) == {"/data/due_at"}


async def test_an_unknown_type_is_a_422_listing_the_known_types(tenant: Tenant) -> None:
    response = await tenant.writer.post("/v1/events", json=referral(type="referal_received"))
    body = problem(response, 422)
    (error,) = body["errors"]
    assert error["pointer"] == "/type"
    assert "referral_received" in error["detail"]
    assert "case_reopened" in error["detail"]


async def test_missing_fields_are_each_reported_with_a_pointer(tenant: Tenant) -> None:
    response = await tenant.writer.post("/v1/events", json={"id": "ev-1"})
    body = problem(response, 422)
    assert pointers(body) == {"/type", "/case_id", "/occurred_at"}


async def test_an_unexpected_top_level_field_is_refused(tenant: Tenant) -> None:
    response = await tenant.writer.post("/v1/events", json=referral(child_name="someone"))
    body = problem(response, 422)
    assert pointers(body) == {"/child_name"}


async def test_an_id_containing_nul_is_refused(tenant: Tenant) -> None:
    response = await tenant.writer.post("/v1/events", json=referral(event_id="ev\x001"))
    body = problem(response, 422)
    assert pointers(body) == {"/id"}


async def test_an_id_longer_than_200_characters_is_refused(tenant: Tenant) -> None:
    response = await tenant.writer.post("/v1/events", json=referral(event_id="x" * 201))
    body = problem(response, 422)
    assert pointers(body) == {"/id"}


@pytest.mark.parametrize("field", ["id", "case_id", "worker_id", "team_id"])
@pytest.mark.parametrize("blank", ["   ", "\N{NO-BREAK SPACE}\t"])
async def test_an_identifier_of_only_spaces_is_refused_naming_the_field(
    tenant: Tenant, field: str, blank: str
) -> None:
    response = await tenant.writer.post("/v1/events", json={**referral(), field: blank})
    body = problem(response, 422)
    assert body["errors"] == [
        {"pointer": f"/{field}", "detail": "must not be empty or only spaces"}
    ]


@pytest.mark.parametrize("field", ["id", "case_id", "worker_id", "team_id"])
@pytest.mark.parametrize("control", ["\x1f", "\t", "\n", "\x7f"])
async def test_an_identifier_holding_a_control_character_is_refused_naming_the_field(
    tenant: Tenant, field: str, control: str
) -> None:
    response = await tenant.writer.post("/v1/events", json={**referral(), field: f"C{control}1"})
    body = problem(response, 422)
    assert body["errors"] == [
        {
            "pointer": f"/{field}",
            "detail": "must not hold control characters (tabs, line breaks and the like)",
        }
    ]


async def test_a_referral_decision_without_an_outcome_is_refused(tenant: Tenant) -> None:
    decision = referral(type="referral_decision_made", data={})
    body = problem(await tenant.writer.post("/v1/events", json=decision), 422)
    assert pointers(body) == {"/data/outcome"}


async def test_a_referral_decision_with_an_unknown_outcome_is_refused(tenant: Tenant) -> None:
    decision = referral(type="referral_decision_made", data={"outcome": "maybe"})
    body = problem(await tenant.writer.post("/v1/events", json=decision), 422)
    assert pointers(body) == {"/data/outcome"}
    assert "no_further_action" in body["errors"][0]["detail"]


async def test_a_task_due_without_due_at_is_refused(tenant: Tenant) -> None:
    task = referral(type="task_due", data={"task_id": "T-1", "title": "Visit"})
    body = problem(await tenant.writer.post("/v1/events", json=task), 422)
    assert "/data/due_at" in pointers(body)


async def test_a_task_due_with_a_naive_due_at_is_refused(tenant: Tenant) -> None:
    task = referral(
        type="task_due", data={"task_id": "T-1", "title": "Visit", "due_at": "2026-12-01T09:00"}
    )
    body = problem(await tenant.writer.post("/v1/events", json=task), 422)
    assert "/data/due_at" in pointers(body)


async def test_a_body_that_is_not_a_json_object_is_a_422_problem(tenant: Tenant) -> None:
    response = await tenant.writer.post("/v1/events", json=[referral()])
    problem(response, 422)


async def test_an_invalid_event_stores_nothing(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=referral(occurred_at="2026-11-02T10:15:00"))
    response = await tenant.reader.get("/v1/events", params={"case_id": "C-1"})
    assert response.json()["items"] == []


async def test_obligations_reflect_an_event_as_soon_as_the_post_returns(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=referral())
    response = await tenant.reader.get("/v1/obligations", params={"case_id": "C-1"})
    rules = {o["rule_id"] for o in response.json()["items"]}
    assert rules == {"referral-decision", "first-contact", "assessment-completion"}


async def test_the_case_reflects_an_event_as_soon_as_the_post_returns(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=referral())
    decision = referral(
        event_id="ev-2",
        type="referral_decision_made",
        occurred_at="2026-11-03T09:00:00Z",
        worker_id="W-20",
        data={"outcome": "assessment"},
    )
    await tenant.writer.post("/v1/events", json=decision)
    case = (await tenant.reader.get("/v1/cases/C-1")).json()
    assert case["worker_id"] == "W-20"
    assert [e["id"] for e in case["events"]] == ["ev-1", "ev-2"]
    statuses = {o["rule_id"]: o["status"] for o in case["obligations"]}
    assert statuses["referral-decision"] == "met"


async def test_a_plain_date_is_stored_as_local_midnight_in_utc(tenant: Tenant) -> None:
    summer = referral(occurred_at="2026-07-01")
    await tenant.writer.post("/v1/events", json=summer)
    (stored,) = (await tenant.reader.get("/v1/events")).json()["items"]
    assert stored["occurred_at"] == "2026-06-30T23:00:00Z"


async def test_an_offset_time_is_returned_in_utc_with_z(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=referral(occurred_at="2026-11-02T10:15:00+01:00"))
    (stored,) = (await tenant.reader.get("/v1/events")).json()["items"]
    assert stored["occurred_at"] == "2026-11-02T09:15:00Z"
    assert stored["received_at"] == "2026-11-20T12:00:00Z"


async def test_the_event_log_is_filtered_by_case(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=referral("ev-1", case_id="C-1"))
    await tenant.writer.post("/v1/events", json=referral("ev-2", case_id="C-2"))
    response = await tenant.reader.get("/v1/events", params={"case_id": "C-2"})
    assert [e["id"] for e in response.json()["items"]] == ["ev-2"]


async def test_the_event_log_pages_oldest_first_without_gaps(tenant: Tenant) -> None:
    for day in range(1, 8):
        await tenant.writer.post(
            "/v1/events", json=referral(f"ev-{day}", occurred_at=f"2026-11-{day:02}T09:00:00Z")
        )
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await tenant.reader.get("/v1/events", params=params)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"ev-{day}" for day in range(1, 8)]


async def test_the_event_log_refuses_a_cursor_it_did_not_issue(tenant: Tenant) -> None:
    response = await tenant.reader.get("/v1/events", params={"cursor": "not-a-cursor"})
    body = problem(response, 422)
    assert body["errors"][0]["parameter"] == "cursor"
