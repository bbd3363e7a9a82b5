"""GET /v1/obligations: filters, evaluation at any instant, cursor pagination."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import FixedClock, Tenant

FIELDS = {
    "id",
    "case_id",
    "rule_id",
    "rule_name",
    "status",
    "missed",
    "opened_at",
    "due_at",
    "met_at",
    "met_at_latest",
    "cancelled_at",
    "worker_id",
    "team_id",
    "sequence",
    "working_days_overdue",
    "escalation_level",
    "at_risk",
    "opened_by_event",
    "met_by_event",
    # docs/rules.md, Why a deadline is late
    "original_due_at",
    "delay_reason",
    "delay_reason_label",
    "delay_note",
    "delay_reason_event",
    "extension_authorised_by",
    "extension_event",
    "paused",
}
# A referral on Monday 2 November 2026 is due a decision by the end of Tuesday 3 November.
DECISION_DUE = "2026-11-03T23:59:59.999999Z"


def event(event_id: str, event_type: str, case_id: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"id": event_id, "type": event_type, "case_id": case_id, "occurred_at": at, **fields}


async def post(tenant: Tenant, *events: dict[str, Any]) -> None:
    response = await tenant.writer.post("/v1/events/batch", json={"events": list(events)})
    assert {r["status"] for r in response.json()["results"]} == {"created"}, response.text


async def refer(
    tenant: Tenant,
    case_id: str = "C-1",
    at: str = "2026-11-02T10:15:00Z",
    worker_id: str = "W-1",
    team_id: str = "T-1",
) -> None:
    await post(
        tenant,
        event(
            f"{case_id}-ref",
            "referral_received",
            case_id,
            at,
            worker_id=worker_id,
            team_id=team_id,
        ),
    )


async def decide(
    tenant: Tenant, at: str, case_id: str = "C-1", outcome: str = "assessment"
) -> None:
    await post(
        tenant,
        event(f"{case_id}-dec", "referral_decision_made", case_id, at, data={"outcome": outcome}),
    )


async def listing(tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    response = await tenant.reader.get("/v1/obligations", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def by_rule(tenant: Tenant, **params: Any) -> dict[str, dict[str, Any]]:
    return {o["rule_id"]: o for o in await listing(tenant, **params)}


def problem(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


# The shape of an obligation


async def test_each_obligation_has_exactly_the_documented_fields(tenant: Tenant) -> None:
    await refer(tenant)
    for obligation in await listing(tenant):
        assert set(obligation) == FIELDS


async def test_times_are_given_in_utc_with_z(tenant: Tenant) -> None:
    await refer(tenant, at="2026-11-02T10:15:00+01:00")
    decision = (await by_rule(tenant))["referral-decision"]
    assert decision["opened_at"] == "2026-11-02T09:15:00Z"
    assert decision["due_at"] == DECISION_DUE


async def test_a_due_day_in_summer_time_ends_at_local_midnight_in_utc(tenant: Tenant) -> None:
    await refer(tenant, at="2026-07-01T09:00:00Z")
    decision = (await by_rule(tenant))["referral-decision"]
    assert decision["due_at"] == "2026-07-02T22:59:59.999999Z"


async def test_an_obligation_names_its_rule_case_allocation_and_opening_event(
    tenant: Tenant,
) -> None:
    await refer(tenant, worker_id="W-5", team_id="T-2")
    decision = (await by_rule(tenant))["referral-decision"]
    assert decision["case_id"] == "C-1"
    assert decision["rule_name"] == "Referral decision within 1 working day"
    assert (decision["worker_id"], decision["team_id"]) == ("W-5", "T-2")
    assert decision["opened_by_event"] == "C-1-ref"
    assert decision["sequence"] == 1


async def test_an_initial_conference_names_the_strategy_discussion_it_counts_from(
    tenant: Tenant,
) -> None:
    await post(
        tenant,
        event("C-1-sd", "strategy_discussion_held", "C-1", "2026-11-02T10:00:00Z"),
        event("C-1-s47", "section47_started", "C-1", "2026-11-04T09:00:00Z"),
    )
    conference = (await by_rule(tenant))["initial-cp-conference"]
    # 15 working days after Mon 2 November 2026 (no bank holiday in November).
    assert conference["due_at"] == "2026-11-23T23:59:59.999999Z"
    assert (conference["opened_by_event"], conference["opened_at"]) == (
        "C-1-sd",
        "2026-11-02T10:00:00Z",
    )


async def test_voiding_the_strategy_discussion_counts_the_conference_from_the_enquiry(
    tenant: Tenant,
) -> None:
    await post(
        tenant,
        event("C-1-sd", "strategy_discussion_held", "C-1", "2026-11-02T10:00:00Z"),
        event("C-1-s47", "section47_started", "C-1", "2026-11-04T09:00:00Z"),
    )
    before = (await by_rule(tenant))["initial-cp-conference"]
    voided = await tenant.writer.post("/v1/events/C-1-sd/void", json={"reason": "wrong case"})
    assert voided.status_code == 200, voided.text
    after = (await by_rule(tenant))["initial-cp-conference"]
    assert after["id"] == before["id"]
    # 15 working days after Wed 4 November 2026.
    assert (after["opened_by_event"], after["due_at"]) == (
        "C-1-s47",
        "2026-11-25T23:59:59.999999Z",
    )


async def test_obligations_come_in_due_date_order(tenant: Tenant) -> None:
    await refer(tenant)
    assert [o["rule_id"] for o in await listing(tenant)] == [
        "referral-decision",
        "first-contact",
        "assessment-completion",
    ]


# Evaluation at an instant


@pytest.mark.parametrize(
    ("as_of", "status"),
    [
        ("2026-11-02T12:00:00Z", "upcoming"),
        ("2026-11-03T12:00:00Z", "due_soon"),
        ("2026-11-04T12:00:00Z", "overdue"),
        ("2026-11-05T12:00:00Z", "met_late"),
    ],
)
async def test_the_same_log_gives_each_status_at_its_own_instant(
    tenant: Tenant, as_of: str, status: str
) -> None:
    await refer(tenant)
    await decide(tenant, "2026-11-05T09:00:00Z")
    assert (await by_rule(tenant, as_of=as_of))["referral-decision"]["status"] == status


async def test_a_decision_in_time_is_met_after_it_and_upcoming_before_it(tenant: Tenant) -> None:
    await refer(tenant)
    await decide(tenant, "2026-11-03T09:00:00Z")
    before = (await by_rule(tenant, as_of="2026-11-02T18:00:00Z"))["referral-decision"]
    after = (await by_rule(tenant, as_of="2026-11-04T12:00:00Z"))["referral-decision"]
    assert (before["status"], after["status"]) == ("upcoming", "met")


async def test_met_at_is_hidden_until_the_meeting_event_has_happened(tenant: Tenant) -> None:
    await refer(tenant)
    await decide(tenant, "2026-11-05T09:00:00Z")
    before = (await by_rule(tenant, as_of="2026-11-04T12:00:00Z"))["referral-decision"]
    after = (await by_rule(tenant, as_of="2026-11-06T12:00:00Z"))["referral-decision"]
    assert (before["met_at"], before["met_by_event"]) == (None, None)
    assert (after["met_at"], after["met_by_event"]) == ("2026-11-05T09:00:00Z", "C-1-dec")
    assert after["met_at_latest"] is False  # the event says when it happened


async def test_a_cancelled_obligation_shows_when_it_was_cancelled(tenant: Tenant) -> None:
    await refer(tenant)
    await decide(tenant, "2026-11-03T09:00:00Z", outcome="no_further_action")
    contact = (await by_rule(tenant, as_of="2026-11-04T12:00:00Z"))["first-contact"]
    assert contact["status"] == "cancelled"
    assert contact["cancelled_at"] == "2026-11-03T09:00:00Z"


async def looked_after_then_ceased(tenant: Tenant, ceased_at: str) -> None:
    """A child looked after from Mon 2 November 2026, due a first review by the end of
    Mon 30 November (20 working days), who ceased to be looked after at `ceased_at`."""
    await post(
        tenant,
        event("C-1-lac", "became_looked_after", "C-1", "2026-11-02T10:00:00Z"),
        event("C-1-ceased", "ceased_looked_after", "C-1", ceased_at),
    )


async def test_a_deadline_missed_and_then_cancelled_shows_missed_beside_cancelled(
    tenant: Tenant, clock: FixedClock
) -> None:
    clock.now = datetime(2026, 12, 10, 12, tzinfo=UTC)
    await looked_after_then_ceased(tenant, "2026-12-02T09:00:00Z")
    review = (await by_rule(tenant))["cla-review"]
    assert review["due_at"] == "2026-11-30T23:59:59.999999Z"
    assert (review["status"], review["missed"]) == ("cancelled", True)
    assert review["cancelled_at"] == "2026-12-02T09:00:00Z"


async def test_a_missed_deadline_is_overdue_and_not_yet_missed_before_it_is_cancelled(
    tenant: Tenant, clock: FixedClock
) -> None:
    clock.now = datetime(2026, 12, 10, 12, tzinfo=UTC)
    await looked_after_then_ceased(tenant, "2026-12-02T09:00:00Z")
    review = (await by_rule(tenant, as_of="2026-12-01T12:00:00Z"))["cla-review"]
    assert (review["status"], review["missed"]) == ("overdue", False)


async def test_a_deadline_cancelled_before_it_fell_due_is_not_missed(tenant: Tenant) -> None:
    await looked_after_then_ceased(tenant, "2026-11-20T09:00:00Z")
    review = (await by_rule(tenant))["cla-review"]
    assert (review["status"], review["missed"]) == ("cancelled", False)


async def test_obligations_opened_after_as_of_are_absent(tenant: Tenant) -> None:
    await refer(tenant)
    assert await listing(tenant, as_of="2026-11-02T10:14:59Z") == []
    assert len(await listing(tenant, as_of="2026-11-02T10:15:00Z")) == 3


async def test_without_as_of_obligations_are_evaluated_at_the_clock(
    tenant: Tenant, clock: FixedClock
) -> None:
    await refer(tenant)
    clock.now = datetime(2026, 11, 3, 12, tzinfo=UTC)
    assert (await by_rule(tenant))["referral-decision"]["status"] == "due_soon"


async def test_as_of_honours_its_offset(tenant: Tenant) -> None:
    await refer(tenant)
    # 00:30 on 4 November in +01:00 is still 3 November in UTC and in London.
    decision = (await by_rule(tenant, as_of="2026-11-04T00:30:00+01:00"))["referral-decision"]
    assert decision["status"] == "due_soon"


async def test_a_plain_date_as_of_is_the_start_of_that_local_day(tenant: Tenant) -> None:
    await refer(tenant)
    assert (await by_rule(tenant, as_of="2026-11-03"))["referral-decision"]["status"] == "due_soon"
    assert (await by_rule(tenant, as_of="2026-11-04"))["referral-decision"]["status"] == "overdue"


async def test_working_days_overdue_and_escalation_grow_with_as_of(tenant: Tenant) -> None:
    await refer(tenant)
    early = (await by_rule(tenant, as_of="2026-11-04T12:00:00Z"))["referral-decision"]
    late = (await by_rule(tenant, as_of="2026-11-20T12:00:00Z"))["referral-decision"]
    assert (early["working_days_overdue"], early["escalation_level"]) == (1, 0)
    assert (late["working_days_overdue"], late["escalation_level"]) == (13, 2)


async def test_an_obligation_not_overdue_has_zero_days_overdue(tenant: Tenant) -> None:
    await refer(tenant)
    decision = (await by_rule(tenant, as_of="2026-11-03T12:00:00Z"))["referral-decision"]
    assert (decision["working_days_overdue"], decision["escalation_level"]) == (0, 0)
    assert decision["at_risk"] is False


async def test_a_naive_as_of_is_refused(tenant: Tenant) -> None:
    body = problem(await tenant.reader.get("/v1/obligations", params={"as_of": "2026-11-04T12:00"}))
    assert body["errors"][0]["parameter"] == "as_of"


@pytest.mark.parametrize("name", ["as_of", "due_before"])
@pytest.mark.parametrize("value", ["9999-12-31T23:59:59-05:00", "0001-01-01"])
async def test_an_instant_in_a_far_off_year_is_refused(
    tenant: Tenant, name: str, value: str
) -> None:
    body = problem(await tenant.reader.get("/v1/obligations", params={name: value}))
    assert body["errors"][0]["parameter"] == name


# Filters


async def test_status_filters_to_one_status(tenant: Tenant) -> None:
    await refer(tenant)
    items = await listing(tenant, status="due_soon", as_of="2026-11-04T12:00:00Z")
    assert [o["rule_id"] for o in items] == ["first-contact"]


async def test_status_takes_a_comma_separated_list(tenant: Tenant) -> None:
    await refer(tenant)
    items = await listing(tenant, status="overdue, due_soon", as_of="2026-11-04T12:00:00Z")
    assert [o["rule_id"] for o in items] == ["referral-decision", "first-contact"]


async def test_status_met_finds_only_obligations_met_by_as_of(tenant: Tenant) -> None:
    await refer(tenant)
    await decide(tenant, "2026-11-03T09:00:00Z")
    assert await listing(tenant, status="met", as_of="2026-11-03T08:00:00Z") == []
    met = await listing(tenant, status="met", as_of="2026-11-03T10:00:00Z")
    assert [o["rule_id"] for o in met] == ["referral-decision"]


async def test_status_cancelled_and_met_late_filter_as_evaluated(tenant: Tenant) -> None:
    await refer(tenant, case_id="C-1")
    await refer(tenant, case_id="C-2")
    await decide(tenant, "2026-11-05T09:00:00Z", case_id="C-1")
    await decide(tenant, "2026-11-03T09:00:00Z", case_id="C-2", outcome="early_help")
    items = await listing(tenant, status="met_late,cancelled", as_of="2026-11-06T12:00:00Z")
    assert sorted((o["case_id"], o["rule_id"], o["status"]) for o in items) == [
        ("C-1", "referral-decision", "met_late"),
        ("C-2", "assessment-completion", "cancelled"),
        ("C-2", "first-contact", "cancelled"),
    ]


async def test_an_unknown_status_is_refused(tenant: Tenant) -> None:
    body = problem(await tenant.reader.get("/v1/obligations", params={"status": "overdue,late"}))
    assert body["errors"][0]["parameter"] == "status"


async def test_rule_id_filters_to_one_rule(tenant: Tenant) -> None:
    await refer(tenant, case_id="C-1")
    await refer(tenant, case_id="C-2")
    items = await listing(tenant, rule_id="first-contact")
    assert sorted((o["case_id"], o["rule_id"]) for o in items) == [
        ("C-1", "first-contact"),
        ("C-2", "first-contact"),
    ]


async def test_case_id_filters_to_one_case(tenant: Tenant) -> None:
    await refer(tenant, case_id="C-1")
    await refer(tenant, case_id="C-2")
    assert {o["case_id"] for o in await listing(tenant, case_id="C-2")} == {"C-2"}


async def test_team_id_filters_to_one_team(tenant: Tenant) -> None:
    await refer(tenant, case_id="C-1", team_id="T-1")
    await refer(tenant, case_id="C-2", team_id="T-2")
    assert {o["case_id"] for o in await listing(tenant, team_id="T-2")} == {"C-2"}


async def test_worker_id_filters_to_one_worker(tenant: Tenant) -> None:
    await refer(tenant, case_id="C-1", worker_id="W-1")
    await refer(tenant, case_id="C-2", worker_id="W-2")
    assert {o["case_id"] for o in await listing(tenant, worker_id="W-1")} == {"C-1"}


async def test_a_reallocation_moves_the_obligations_to_the_new_worker(tenant: Tenant) -> None:
    await refer(tenant, worker_id="W-1")
    await post(
        tenant,
        event("alloc", "case_allocated", "C-1", "2026-11-03T09:00:00Z", worker_id="W-2"),
    )
    assert await listing(tenant, worker_id="W-1") == []
    assert len(await listing(tenant, worker_id="W-2")) == 3


async def test_due_before_keeps_obligations_due_before_that_instant(tenant: Tenant) -> None:
    await refer(tenant)
    items = await listing(tenant, due_before="2026-11-06T00:00:00Z")
    assert [o["rule_id"] for o in items] == ["referral-decision", "first-contact"]


async def test_due_before_a_plain_date_means_before_that_local_day(tenant: Tenant) -> None:
    await refer(tenant)
    assert [o["rule_id"] for o in await listing(tenant, due_before="2026-11-04")] == [
        "referral-decision"
    ]


async def test_a_naive_due_before_is_refused(tenant: Tenant) -> None:
    response = await tenant.reader.get("/v1/obligations", params={"due_before": "2026-11-04T00:00"})
    assert problem(response)["errors"][0]["parameter"] == "due_before"


async def test_filters_combine(tenant: Tenant) -> None:
    await refer(tenant, case_id="C-1", worker_id="W-1")
    await refer(tenant, case_id="C-2", worker_id="W-2")
    await decide(tenant, "2026-11-03T09:00:00Z", case_id="C-1")
    items = await listing(
        tenant, status="overdue", rule_id="referral-decision", as_of="2026-11-10T12:00:00Z"
    )
    assert [o["case_id"] for o in items] == ["C-2"]


# Pagination


async def walk(tenant: Tenant, limit: int, **params: Any) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page_params: dict[str, Any] = {"limit": limit, **params}
        if cursor is not None:
            page_params["cursor"] = cursor
        response = await tenant.reader.get("/v1/obligations", params=page_params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        ids += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


async def test_paging_walks_every_obligation_once_in_order(tenant: Tenant) -> None:
    # Cases referred on the same day share due instants, so the id breaks ties across pages.
    await post(
        tenant,
        *(
            event(f"ref-{i}", "referral_received", f"C-{i:02}", f"2026-11-0{2 + i % 3}T10:00:00Z")
            for i in range(13)
        ),
    )
    everything = [o["id"] for o in await listing(tenant, limit=1000)]
    assert len(everything) == 39
    for limit in (1, 4, 10, 39):
        assert await walk(tenant, limit) == everything


async def test_paging_keeps_the_filters(tenant: Tenant) -> None:
    for i in range(5):
        await refer(tenant, case_id=f"C-{i}", worker_id="W-1" if i % 2 else "W-2")
    ids = await walk(tenant, 2, worker_id="W-1")
    assert len(ids) == len(set(ids)) == 6


async def test_a_full_last_page_has_no_next_cursor(tenant: Tenant) -> None:
    await refer(tenant)
    page = (await tenant.reader.get("/v1/obligations", params={"limit": 3})).json()
    assert len(page["items"]) == 3
    assert page["next_cursor"] is None


async def test_the_limit_defaults_to_100(tenant: Tenant) -> None:
    await post(
        tenant,
        *(event(f"ref-{i}", "referral_received", f"C-{i}", "2026-11-02T10:00Z") for i in range(40)),
    )
    page = (await tenant.reader.get("/v1/obligations")).json()
    assert len(page["items"]) == 100
    assert page["next_cursor"] is not None


@pytest.mark.parametrize("limit", [0, 1001, -1])
async def test_a_limit_out_of_bounds_is_refused(tenant: Tenant, limit: int) -> None:
    body = problem(await tenant.reader.get("/v1/obligations", params={"limit": limit}))
    assert body["errors"][0]["parameter"] == "limit"


async def test_a_limit_of_1000_is_accepted(tenant: Tenant) -> None:
    response = await tenant.reader.get("/v1/obligations", params={"limit": 1000})
    assert response.status_code == 200


def forged(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "%%%",
        forged("2026-11-03T23:59:59+00:00"),
        forged("yesterday", "ob_1"),
        forged("2026-11-03T23:59:59+00:00", 7),
        forged({"due": 1}, "ob_1"),
        forged("9999-12-31T23:59:59-05:00", "ob_1"),
    ],
)
async def test_a_cursor_the_list_did_not_issue_is_refused(tenant: Tenant, cursor: str) -> None:
    await refer(tenant)
    body = problem(await tenant.reader.get("/v1/obligations", params={"cursor": cursor}))
    assert body["errors"][0]["parameter"] == "cursor"
