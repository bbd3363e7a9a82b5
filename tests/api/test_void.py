"""POST /v1/events/{id}/void: a mistaken event is kept for audit and ignored by the rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from conftest import FixedClock, Tenant

REFERRAL = {
    "id": "ev-ref",
    "type": "referral_received",
    "case_id": "C-1",
    "occurred_at": "2026-11-02T10:15:00Z",
    "worker_id": "W-1",
    "data": {},
}
DECISION = {
    "id": "ev-dec",
    "type": "referral_decision_made",
    "case_id": "C-1",
    "occurred_at": "2026-11-03T09:00:00Z",
    "data": {"outcome": "assessment"},
}


async def obligations(tenant: Tenant) -> dict[str, dict[str, Any]]:
    response = await tenant.reader.get("/v1/obligations", params={"case_id": "C-1"})
    return {o["rule_id"]: o for o in response.json()["items"]}


async def void(tenant: Tenant, event_id: str, reason: str = "entered in error") -> Any:
    return await tenant.writer.post(f"/v1/events/{event_id}/void", json={"reason": reason})


async def test_voiding_the_referral_removes_its_obligations(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    response = await void(tenant, "ev-ref")
    assert response.status_code == 200
    assert await obligations(tenant) == {}


async def test_voiding_the_meeting_event_opens_the_obligation_again(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    await tenant.writer.post("/v1/events", json=DECISION)
    assert (await obligations(tenant))["referral-decision"]["status"] == "met"
    await void(tenant, "ev-dec")
    decision = (await obligations(tenant))["referral-decision"]
    assert decision["status"] == "overdue"
    assert decision["met_at"] is None
    assert decision["met_by_event"] is None


async def test_a_voided_event_stays_in_the_log_marked_with_time_and_reason(
    tenant: Tenant, clock: FixedClock
) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    clock.now = datetime(2026, 11, 21, 8, 30, tzinfo=UTC)
    await void(tenant, "ev-ref", reason="wrong child")
    (event,) = (await tenant.reader.get("/v1/events", params={"case_id": "C-1"})).json()["items"]
    assert event["id"] == "ev-ref"
    assert event["voided_at"] == "2026-11-21T08:30:00Z"
    assert event["void_reason"] == "wrong child"


async def test_the_void_response_is_the_voided_event(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    body = (await void(tenant, "ev-ref")).json()
    assert body["id"] == "ev-ref"
    assert body["voided_at"] == "2026-11-20T12:00:00Z"
    assert body["void_reason"] == "entered in error"


async def test_voiding_twice_keeps_the_first_void(tenant: Tenant, clock: FixedClock) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    await void(tenant, "ev-ref", reason="first")
    clock.now = datetime(2026, 11, 22, tzinfo=UTC)
    again = await void(tenant, "ev-ref", reason="second")
    assert again.status_code == 200
    assert again.json()["voided_at"] == "2026-11-20T12:00:00Z"
    assert again.json()["void_reason"] == "first"


async def test_voiding_an_unknown_event_is_a_404_problem(tenant: Tenant) -> None:
    response = await void(tenant, "nope")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_voiding_an_unknown_event_creates_no_case(tenant: Tenant) -> None:
    await void(tenant, "nope")
    response = await tenant.reader.get("/v1/obligations")
    assert response.json()["items"] == []


async def test_a_void_needs_a_reason(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    response = await tenant.writer.post("/v1/events/ev-ref/void", json={})
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/reason"


async def test_a_void_reason_containing_nul_is_refused(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    response = await void(tenant, "ev-ref", reason="typo\x00")
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/reason"


async def test_reposting_a_voided_event_is_a_duplicate_that_stays_void(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    await void(tenant, "ev-ref")
    response = await tenant.writer.post("/v1/events", json=REFERRAL)
    assert response.status_code == 200
    assert response.json()["status"] == "duplicate"
    assert await obligations(tenant) == {}


async def test_the_case_shows_voided_events_but_derives_without_them(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=REFERRAL)
    await tenant.writer.post("/v1/events", json=DECISION)
    await void(tenant, "ev-dec")
    case = (await tenant.reader.get("/v1/cases/C-1")).json()
    voided = {e["id"]: e["voided_at"] for e in case["events"]}
    assert voided == {"ev-ref": None, "ev-dec": "2026-11-20T12:00:00Z"}
    statuses = {o["rule_id"]: o["status"] for o in case["obligations"]}
    assert statuses["referral-decision"] == "overdue"


async def test_an_event_id_with_a_slash_can_be_voided(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json={**REFERRAL, "id": "annex-a:C1/2"})
    response = await tenant.writer.post(
        "/v1/events/annex-a:C1%2F2/void", json={"reason": "duplicate import"}
    )
    assert response.status_code == 200
    assert response.json()["id"] == "annex-a:C1/2"
