"""GET /v1/cases/{case_id}: the case, its log and its obligations."""

from __future__ import annotations

from typing import Any

from conftest import Tenant


def event(event_id: str, event_type: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"id": event_id, "type": event_type, "case_id": "C-1", "occurred_at": at, **fields}


REFERRAL = event("ref", "referral_received", "2026-11-02T10:15:00Z", worker_id="W-1", team_id="T-1")


async def post(tenant: Tenant, *events: dict[str, Any]) -> None:
    for body in events:
        response = await tenant.writer.post("/v1/events", json=body)
        assert response.status_code == 201, response.text


async def get_case(tenant: Tenant, case_id: str = "C-1", **params: Any) -> dict[str, Any]:
    response = await tenant.reader.get(f"/v1/cases/{case_id}", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_case_shows_its_allocation_status_events_and_obligations(tenant: Tenant) -> None:
    await post(tenant, REFERRAL)
    case = await get_case(tenant)
    assert {k: case[k] for k in ("case_id", "worker_id", "team_id", "status")} == {
        "case_id": "C-1",
        "worker_id": "W-1",
        "team_id": "T-1",
        "status": "open",
    }
    assert [e["id"] for e in case["events"]] == ["ref"]
    assert len(case["obligations"]) == 3


async def test_the_allocation_is_the_latest_by_occurred_at_not_by_arrival(tenant: Tenant) -> None:
    await post(
        tenant,
        REFERRAL,
        event("late", "case_allocated", "2026-11-10T09:00:00Z", worker_id="W-3", team_id="T-2"),
        event("backdated", "case_allocated", "2026-11-05T09:00:00Z", worker_id="W-2"),
    )
    case = await get_case(tenant)
    assert (case["worker_id"], case["team_id"]) == ("W-3", "T-2")


async def test_events_are_listed_by_when_they_happened(tenant: Tenant) -> None:
    await post(
        tenant,
        event("b", "contact_made", "2026-11-03T09:00:00Z"),
        REFERRAL,
    )
    assert [e["id"] for e in (await get_case(tenant))["events"]] == ["ref", "b"]


async def test_an_event_in_the_case_has_its_data_and_times(tenant: Tenant) -> None:
    await post(
        tenant,
        REFERRAL,
        event("dec", "referral_decision_made", "2026-11-03", data={"outcome": "assessment"}),
    )
    decision = (await get_case(tenant))["events"][1]
    assert decision == {
        "id": "dec",
        "type": "referral_decision_made",
        "case_id": "C-1",
        "occurred_at": "2026-11-03T00:00:00Z",
        "worker_id": None,
        "team_id": None,
        "data": {"outcome": "assessment"},
        "received_at": "2026-11-20T12:00:00Z",
        "voided_at": None,
        "void_reason": None,
    }


async def test_a_closed_case_is_closed_with_its_obligations_cancelled(tenant: Tenant) -> None:
    await post(tenant, REFERRAL, event("close", "case_closed", "2026-11-03T09:00:00Z"))
    case = await get_case(tenant)
    assert case["status"] == "closed"
    assert {o["status"] for o in case["obligations"]} == {"cancelled"}


async def test_a_reopened_case_is_open(tenant: Tenant) -> None:
    await post(
        tenant,
        REFERRAL,
        event("close", "case_closed", "2026-11-03T09:00:00Z"),
        event("reopen", "case_reopened", "2026-11-04T09:00:00Z"),
    )
    assert (await get_case(tenant))["status"] == "open"


async def test_a_referral_and_its_decision_on_the_same_date_leave_the_decision_met(
    tenant: Tenant,
) -> None:
    await post(
        tenant,
        event("dec", "referral_decision_made", "2026-11-02", data={"outcome": "assessment"}),
        event("ref", "referral_received", "2026-11-02"),
    )
    statuses = {o["rule_id"]: o["status"] for o in (await get_case(tenant))["obligations"]}
    assert statuses["referral-decision"] == "met"


async def test_the_case_evaluates_its_obligations_at_as_of(tenant: Tenant) -> None:
    await post(tenant, REFERRAL)
    case = await get_case(tenant, as_of="2026-11-03T12:00:00Z")
    statuses = {o["rule_id"]: o["status"] for o in case["obligations"]}
    assert statuses == {
        "referral-decision": "due_soon",
        "first-contact": "upcoming",
        "assessment-completion": "upcoming",
    }


async def test_the_case_omits_obligations_opened_after_as_of(tenant: Tenant) -> None:
    await post(tenant, REFERRAL)
    case = await get_case(tenant, as_of="2026-11-01T12:00:00Z")
    assert case["obligations"] == []


async def test_an_unknown_case_is_a_404_problem(tenant: Tenant) -> None:
    response = await tenant.reader.get("/v1/cases/C-404")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "/problems/not-found"


async def test_a_case_id_with_a_slash_can_be_read(tenant: Tenant) -> None:
    await post(tenant, {**REFERRAL, "case_id": "LA/2026/17"})
    case = await get_case(tenant, "LA%2F2026%2F17")
    assert case["case_id"] == "LA/2026/17"


async def test_a_naive_as_of_on_a_case_is_refused(tenant: Tenant) -> None:
    await post(tenant, REFERRAL)
    response = await tenant.reader.get("/v1/cases/C-1", params={"as_of": "2026-11-03T12:00"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["parameter"] == "as_of"
