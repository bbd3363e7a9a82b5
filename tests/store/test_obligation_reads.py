"""The obligations listing's status filter, worked out in SQL, against the status each listed
obligation shows, worked out in Python: the two must agree at every instant, and above all at
the instants where a status changes (opening, warning, the due instant, meeting, cancelling).
And the risk periods stored with an obligation, read back as its at-risk flag."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from conftest import Tenant

STATUSES = ("upcoming", "due_soon", "overdue", "met", "met_late", "cancelled")
# A referral on Monday 2 November 2026 (GMT) is due a decision by the end of Tuesday 3
# November, and is due soon from the start of that day.
REFERRED = "2026-11-02T10:15:00Z"
WARNED = "2026-11-03T00:00:00Z"
DECISION_DUE = "2026-11-03T23:59:59.999999Z"
JUST_AFTER_DUE = "2026-11-04T00:00:00Z"


def event(event_id: str, event_type: str, case_id: str, at: str, **data: Any) -> dict[str, Any]:
    return {"id": event_id, "type": event_type, "case_id": case_id, "occurred_at": at, "data": data}


async def post(tenant: Tenant, *events: dict[str, Any]) -> None:
    response = await tenant.writer.post("/v1/events/batch", json={"events": list(events)})
    assert {r["status"] for r in response.json()["results"]} == {"created"}, response.text


async def listing(tenant: Tenant, **params: str) -> list[dict[str, Any]]:
    response = await tenant.reader.get("/v1/obligations", params={"limit": "500", **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def listed_under(tenant: Tenant, status: str, at: str) -> set[tuple[str, str]]:
    """(case, rule) of the obligations the filter `status` lists at `at`."""
    return {(o["case_id"], o["rule_id"]) for o in await listing(tenant, status=status, as_of=at)}


async def seed_every_kind_of_boundary(tenant: Tenant) -> None:
    """Six referrals: left open, decided at the due instant itself, decided a microsecond
    after it, closed at the instant warnings start, and closed or decided at the very instant
    of the referral."""
    decide = {"outcome": "assessment"}
    await post(
        tenant,
        *(event(f"{case}-ref", "referral_received", case, REFERRED) for case in "ABCDEF"),
        event("B-dec", "referral_decision_made", "B", DECISION_DUE, **decide),
        event("C-dec", "referral_decision_made", "C", JUST_AFTER_DUE, **decide),
        event("D-closed", "case_closed", "D", WARNED),
        event("E-closed", "case_closed", "E", REFERRED),
        event("F-dec", "referral_decision_made", "F", REFERRED, **decide),
    )


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def test_an_open_obligation_at_its_due_instant_is_due_soon_and_not_yet_overdue(
    tenant: Tenant,
) -> None:
    await seed_every_kind_of_boundary(tenant)

    assert ("A", "referral-decision") in await listed_under(tenant, "due_soon", DECISION_DUE)
    assert ("A", "referral-decision") not in await listed_under(tenant, "overdue", DECISION_DUE)
    assert ("A", "referral-decision") in await listed_under(tenant, "overdue", JUST_AFTER_DUE)


async def test_a_decision_at_the_due_instant_itself_is_met_and_not_met_late(
    tenant: Tenant,
) -> None:
    await seed_every_kind_of_boundary(tenant)

    assert ("B", "referral-decision") in await listed_under(tenant, "met", JUST_AFTER_DUE)
    assert ("B", "referral-decision") not in await listed_under(tenant, "met_late", JUST_AFTER_DUE)
    assert ("C", "referral-decision") in await listed_under(tenant, "met_late", JUST_AFTER_DUE)


async def test_without_a_warning_an_open_obligation_is_upcoming_until_its_due_instant_passes(
    tenant: Tenant,
) -> None:
    rules = (
        '[[rules]]\nid = "decision"\nname = "Decision"\nsource = "Local"\n'
        'starts_on = ["referral_received"]\ndue = "1 working day"\n'
        'met_by = ["referral_decision_made"]\n'
    )
    response = await tenant.admin.put(
        "/v1/rules", content=rules, headers={"Content-Type": "application/toml"}
    )
    await tenant.activate(response)
    await post(tenant, event("A-ref", "referral_received", "A", REFERRED))

    assert await listed_under(tenant, "upcoming", DECISION_DUE) == {("A", "decision")}
    assert await listed_under(tenant, "overdue", JUST_AFTER_DUE) == {("A", "decision")}
    assert await listed_under(tenant, "upcoming", JUST_AFTER_DUE) == set()


async def test_each_status_filter_lists_exactly_what_shows_that_status_at_every_boundary(
    tenant: Tenant,
) -> None:
    await seed_every_kind_of_boundary(tenant)
    changes = {
        instant(o[field])
        for o in await listing(tenant, as_of="2027-01-01T00:00:00Z")
        for field in ("opened_at", "due_at", "met_at", "cancelled_at")
        if o[field] is not None
    }
    changes.add(instant(WARNED))
    one = timedelta(microseconds=1)
    probes = sorted({at + step for at in changes for step in (-one, timedelta(0), one)})

    for at in map(iso, probes):
        shown = {(o["case_id"], o["rule_id"]): o["status"] for o in await listing(tenant, as_of=at)}
        for status in STATUSES:
            expected = {key for key, shown_status in shown.items() if shown_status == status}
            assert await listed_under(tenant, status, at) == expected, (status, at)


async def at_risk(tenant: Tenant, at: str) -> bool:
    [review] = [o for o in await listing(tenant, as_of=at) if o["rule_id"] == "cp-review"]
    flag: bool = review["at_risk"]
    return flag


async def test_an_obligation_is_at_risk_only_inside_its_stored_risk_period(tenant: Tenant) -> None:
    # A plan started on Monday 3 August 2026 is due its first review by the end of Tuesday 3
    # November. Unbooked, the review is at risk from the start of Tuesday 20 October (10
    # working days before), until it is booked on 22 October for a day before it is due.
    await post(
        tenant,
        event("A-plan", "child_protection_plan_started", "A", "2026-08-03T09:00:00Z"),
        event(
            "A-booked",
            "review_scheduled",
            "A",
            "2026-10-22T10:00:00Z",
            review="cp-review",
            scheduled_for="2026-10-30",
        ),
    )

    assert await at_risk(tenant, "2026-10-19T12:00:00Z") is False
    assert await at_risk(tenant, "2026-10-21T12:00:00Z") is True
    assert await at_risk(tenant, "2026-10-23T12:00:00Z") is False
