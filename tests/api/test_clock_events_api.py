"""Reasons, agreed extensions and pauses through the API (docs/rules.md, Why a deadline is
late): refused with a 422 where the ruleset decides, shown beside the deadline, and counted
in timeliness.

A referral on Monday 23 March 2026 is due a home visit by the end of Wednesday 8 April 2026,
10 working days later with Good Friday (3 April) and Easter Monday (6 April) skipped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import FixedClock, Tenant

TOML = {"content-type": "application/toml"}
HOME_VISIT = """\
[reasons]
child_unavailable = "Child or family unavailable"
worker_absence = "Worker absence"

[[rules]]
id = "home-visit"
name = "Home visit within 10 working days of referral"
source = "Local practice standard"
starts_on = ["referral_received"]
due = "10 working days"
met_by = ["child_seen"]
cancelled_by = ["case_closed"]
extendable = true
max_extension = "10 working days"
pausable = true
max_pause = "20 working days"

[[rules]]
id = "referral-decision"
name = "Referral decision within 1 working day"
source = "Working Together to Safeguard Children 2023"
starts_on = ["referral_received"]
due = "1 working day"
met_by = ["referral_decision_made"]
"""
RULES_DUE = "2026-04-08T22:59:59.999999Z"


@pytest.fixture(autouse=True)
async def local_rules(tenant: Tenant, clock: FixedClock) -> None:
    clock.now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    activated = await tenant.admin.put("/v1/rules", content=HOME_VISIT, headers=TOML)
    assert activated.status_code == 202, activated.text


def event(event_id: str, event_type: str, at: str, **data: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": event_type,
        "case_id": event_id.split("/")[0],
        "occurred_at": at,
        "team_id": "T-1",
        "data": data,
    }


async def post(tenant: Tenant, *events: dict[str, Any]) -> None:
    response = await tenant.writer.post("/v1/events/batch", json={"events": list(events)})
    assert {r["status"] for r in response.json()["results"]} == {"created"}, response.text


async def home_visit(tenant: Tenant, case_id: str = "C-1") -> dict[str, Any]:
    response = await tenant.reader.get(
        "/v1/obligations", params={"case_id": case_id, "rule_id": "home-visit"}
    )
    (obligation,) = response.json()["items"]
    return obligation  # type: ignore[no-any-return]


async def test_an_extension_of_a_rule_that_is_not_extendable_is_refused_naming_the_field(
    tenant: Tenant,
) -> None:
    response = await tenant.writer.post(
        "/v1/events",
        json=event(
            "C-1/x",
            "deadline_extended",
            "2026-03-24",
            rule_id="referral-decision",
            reason="worker_absence",
            authorised_by="M-7",
            extend_by="2 working days",
        ),
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["pointer"] for e in response.json()["errors"]] == ["/data/rule_id"]


async def test_a_reason_not_in_the_organisations_list_is_refused(tenant: Tenant) -> None:
    response = await tenant.writer.post(
        "/v1/events",
        json=event(
            "C-1/r", "delay_reason_recorded", "2026-03-24", rule_id="home-visit", reason="busy"
        ),
    )

    assert response.status_code == 422
    assert [e["pointer"] for e in response.json()["errors"]] == ["/data/reason"]


async def test_an_agreed_extension_shows_both_dates_and_its_reason(tenant: Tenant) -> None:
    await post(
        tenant,
        event("C-1/ref", "referral_received", "2026-03-23"),
        event(
            "C-1/ext",
            "deadline_extended",
            "2026-04-01",
            rule_id="home-visit",
            reason="worker_absence",
            authorised_by="M-7",
            due_on="2026-04-15",
            note="Worker off sick",
        ),
    )

    obligation = await home_visit(tenant)

    assert obligation["due_at"] == "2026-04-15T22:59:59.999999Z"
    assert obligation["original_due_at"] == RULES_DUE
    assert (obligation["delay_reason"], obligation["delay_reason_label"]) == (
        "worker_absence",
        "Worker absence",
    )
    assert obligation["delay_note"] == "Worker off sick"
    assert obligation["extension_authorised_by"] == "M-7"


async def test_the_case_reports_an_event_that_changed_nothing(tenant: Tenant) -> None:
    await post(
        tenant,
        event("C-1/ref", "referral_received", "2026-03-23"),
        event("C-1/resume", "deadline_resumed", "2026-03-25", rule_id="home-visit"),
    )

    case = (await tenant.reader.get("/v1/cases/C-1")).json()

    assert case["without_effect"] == [
        {"event_id": "C-1/resume", "detail": "no paused deadline of rule 'home-visit'"}
    ]


async def test_a_paused_deadline_is_due_later_by_the_working_days_paused(tenant: Tenant) -> None:
    # Paused 30 March to 9 April: 6 working days, so due 16 April.
    await post(
        tenant,
        event("C-1/ref", "referral_received", "2026-03-23"),
        event("C-1/pause", "deadline_paused", "2026-03-30", rule_id="home-visit"),
        event("C-1/resume", "deadline_resumed", "2026-04-09", rule_id="home-visit"),
    )

    assert (await home_visit(tenant))["due_at"] == "2026-04-16T22:59:59.999999Z"


async def test_timeliness_splits_late_by_whether_a_reason_was_recorded(tenant: Tenant) -> None:
    await post(
        tenant,
        event("C-1/ref", "referral_received", "2026-03-23"),
        event("C-1/seen", "child_seen", "2026-04-10"),
        event(
            "C-1/why",
            "delay_reason_recorded",
            "2026-04-13",
            rule_id="home-visit",
            reason="child_unavailable",
        ),
        event("C-2/ref", "referral_received", "2026-03-23"),
        event("C-2/seen", "child_seen", "2026-04-10"),
        event("C-3/ref", "referral_received", "2026-03-23"),
        event(
            "C-3/ext",
            "deadline_extended",
            "2026-04-01",
            rule_id="home-visit",
            reason="worker_absence",
            authorised_by="M-7",
            due_on="2026-04-15",
        ),
        event("C-3/seen", "child_seen", "2026-04-14"),
    )

    response = await tenant.reader.get(
        "/v1/dashboard/timeliness",
        params={"rule_id": "home-visit", "from": "2026-04-01", "to": "2026-04-30"},
    )

    (april,) = response.json()["items"]
    assert {k: april[k] for k in ("completed", "on_time", "late")} == {
        "completed": 3,
        "on_time": 0,
        "late": 3,
    }
    assert (april["late_with_reason"], april["late_without_reason"]) == (2, 1)
