"""GET /v1/obligations/{id}: one obligation with the explanation of its deadline.

The worked examples count with the built-in rulesets' durations (a referral decision within
1 working day, first contact within 3, a section 42 decision within 2) over the published
list of bank holidays in England and Wales: Good Friday Fri 3 Apr 2026, Easter Monday Mon
6 Apr 2026, Summer bank holiday Mon 31 Aug 2026, Christmas Day Fri 25 Dec 2026, Boxing Day
Mon 28 Dec 2026 (substitute day), Christmas Day Mon 27 Dec 2027 and Boxing Day Tue 28 Dec
2027 (substitute days). British Summer Time runs from 29 Mar to 25 Oct 2026, when the end
of a day in London is 22:59:59.999999Z.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import FixedClock, Tenant

from service.domain.rules import builtin_ruleset_text

TOML = {"content-type": "application/toml"}
LIST_FIELDS = {
    "id",
    "case_id",
    "rule_id",
    "rule_name",
    "status",
    "missed",
    "met_at_latest",
    "opened_at",
    "due_at",
    "met_at",
    "cancelled_at",
    "worker_id",
    "team_id",
    "sequence",
    "working_days_overdue",
    "escalation_level",
    "at_risk",
    "opened_by_event",
    "met_by_event",
    "original_due_at",
    "delay_reason",
    "delay_reason_label",
    "delay_note",
    "delay_reason_event",
    "extension_authorised_by",
    "extension_event",
    "paused",
}


@pytest.fixture(autouse=True)
def after_the_examples(tenant: Tenant, clock: FixedClock) -> None:
    """Every example below has happened (events may not be posted ahead of the clock); after
    `tenant`, which sets the clock to its own start."""
    clock.now = datetime(2028, 1, 10, 12, tzinfo=UTC)


async def post(tenant: Tenant, event_id: str, event_type: str, at: str, **data: Any) -> None:
    body = {"id": event_id, "type": event_type, "case_id": "C-1", "occurred_at": at, "data": data}
    response = await tenant.writer.post("/v1/events", json=body)
    assert response.status_code == 201, response.text


async def obligation_id(tenant: Tenant, rule_id: str) -> str:
    response = await tenant.reader.get("/v1/obligations", params={"rule_id": rule_id})
    (item,) = response.json()["items"]
    found: str = item["id"]
    return found


async def explained(tenant: Tenant, rule_id: str, **params: str) -> dict[str, Any]:
    response = await tenant.reader.get(
        f"/v1/obligations/{await obligation_id(tenant, rule_id)}", params=params
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def explanation(tenant: Tenant, rule_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (await explained(tenant, rule_id))["explanation"]
    return found


# Worked examples of the built-in rulesets


async def test_a_decision_across_christmas_skips_christmas_day_and_the_boxing_day_substitute(
    tenant: Tenant,
) -> None:
    await post(tenant, "R1", "referral_received", "2026-12-24T10:00:00Z")
    found = await explanation(tenant, "referral-decision")
    assert found["text"] == (
        "Due by the end of Tue 29 Dec 2026: 1 working day after Thu 24 Dec 2026, skipping "
        "Fri 25 Dec (Christmas Day), Mon 28 Dec (Boxing Day, substitute day)."
    )
    assert found["days_off_skipped"] == [
        {"day": "2026-12-25", "name": "Christmas Day"},
        {"day": "2026-12-28", "name": "Boxing Day, substitute day"},
    ]
    assert found["weekend_days_skipped"] == 2
    assert found["due_at"] == "2026-12-29T23:59:59.999999Z"


async def test_christmas_at_a_weekend_skips_both_substitute_days(tenant: Tenant) -> None:
    await post(tenant, "R1", "referral_received", "2027-12-24T10:00:00Z")
    found = await explanation(tenant, "referral-decision")
    assert found["text"] == (
        "Due by the end of Wed 29 Dec 2027: 1 working day after Fri 24 Dec 2027, skipping "
        "Mon 27 Dec (Christmas Day, substitute day), Tue 28 Dec (Boxing Day, substitute day)."
    )
    assert found["weekend_days_skipped"] == 2


async def test_first_contact_across_easter_skips_good_friday_and_easter_monday(
    tenant: Tenant,
) -> None:
    await post(tenant, "R1", "referral_received", "2026-04-02T09:00:00Z")
    found = await explanation(tenant, "first-contact")
    assert found["text"] == (
        "Due by the end of Thu 9 Apr 2026: 3 working days after Thu 2 Apr 2026, skipping "
        "Fri 3 Apr (Good Friday), Mon 6 Apr (Easter Monday)."
    )
    assert (found["duration"], found["working_days_counted"]) == ("3 working days", 3)


async def test_a_section_42_decision_across_easter_skips_it_too(tenant: Tenant) -> None:
    switched = await tenant.admin.put("/v1/rules", json={"builtin": "england-adults"})
    assert switched.is_success, switched.text
    await post(tenant, "S1", "safeguarding_concern_received", "2026-04-02T09:00:00Z")
    found = await explanation(tenant, "safeguarding-decision")
    assert found["text"] == (
        "Due by the end of Wed 8 Apr 2026: 2 working days after Thu 2 Apr 2026, skipping "
        "Fri 3 Apr (Good Friday), Mon 6 Apr (Easter Monday)."
    )


async def test_a_decision_across_the_august_bank_holiday_ends_at_local_midnight_in_summer_time(
    tenant: Tenant,
) -> None:
    await post(tenant, "R1", "referral_received", "2026-08-28T09:00:00Z")
    found = await explanation(tenant, "referral-decision")
    assert found["text"] == (
        "Due by the end of Tue 1 Sep 2026: 1 working day after Fri 28 Aug 2026, "
        "skipping Mon 31 Aug (Summer bank holiday)."
    )
    assert found["due_day"] == "2026-09-01"
    assert found["due_local"] == "2026-09-01T23:59:59.999999+01:00"
    assert found["due_at"] == "2026-09-01T22:59:59.999999Z"


async def test_counting_starts_on_the_local_day_of_an_event_just_after_midnight_in_summer(
    tenant: Tenant,
) -> None:
    await post(tenant, "R1", "referral_received", "2026-08-27T23:30:00Z")  # 00:30 on the 28th
    found = await explanation(tenant, "referral-decision")
    assert found["counted_from"] == "2026-08-28"
    assert found["text"].startswith("Due by the end of Tue 1 Sep 2026:")


async def test_an_organisation_closure_day_is_skipped_and_named_as_a_closure(
    tenant: Tenant,
) -> None:
    text = builtin_ruleset_text("england-children").replace(
        "closures = []", 'closures = ["2026-11-06"]'
    )
    activated = await tenant.admin.put("/v1/rules", content=text, headers=TOML)
    assert activated.is_success, activated.text
    await post(tenant, "R1", "referral_received", "2026-11-05T10:00:00Z")
    found = await explanation(tenant, "referral-decision")
    assert found["text"] == (
        "Due by the end of Mon 9 Nov 2026: 1 working day after Thu 5 Nov 2026, "
        "skipping Fri 6 Nov (closure)."
    )
    assert found["days_off_skipped"] == [{"day": "2026-11-06", "name": "closure"}]
    assert found["calendar"]["closures"] == ["2026-11-06"]
    assert found["due_at"] == "2026-11-09T23:59:59.999999Z"


async def test_a_deadline_in_calendar_months_skips_nothing(tenant: Tenant) -> None:
    await post(tenant, "P1", "child_protection_plan_started", "2026-03-02T10:00:00Z")
    found = await explanation(tenant, "cp-review")
    assert found["text"] == "Due by the end of Tue 2 Jun 2026: 3 months after Mon 2 Mar 2026."
    assert (found["working_days_counted"], found["days_off_skipped"]) == (None, [])


async def test_a_due_date_given_in_the_event_is_said_to_be_so(tenant: Tenant) -> None:
    await post(tenant, "T1", "task_due", "2026-03-02T10:00:00Z", task_id="A", due_at="2026-03-13")
    found = await explanation(tenant, "scheduled-task")
    assert (
        found["text"] == "Due by the end of Fri 13 Mar 2026: the date given in the event's due_at."
    )
    assert (found["counted_from"], found["duration"]) == (None, None)


# What else the explanation names


async def test_it_names_the_rule_and_the_event_that_opened_the_obligation(tenant: Tenant) -> None:
    await post(tenant, "R1", "referral_received", "2026-08-28T09:00:00Z")
    found = await explanation(tenant, "referral-decision")
    assert found["rule"]["id"] == "referral-decision"
    assert found["rule"]["name"] == "Referral decision within 1 working day"
    assert found["rule"]["source"].startswith("Working Together to Safeguard Children")
    assert found["opened_by"] == {
        "id": "R1",
        "type": "referral_received",
        "occurred_at": "2026-08-28T09:00:00Z",
    }


async def test_it_gives_the_warning_and_escalation_instants(tenant: Tenant) -> None:
    # Due soon from 00:00 on the due day; escalated at the end of 1 and 3 working days after it.
    await post(tenant, "R1", "referral_received", "2026-08-28T09:00:00Z")
    found = await explanation(tenant, "referral-decision")
    assert found["warn_at"] == "2026-08-31T23:00:00Z"
    assert found["escalate_at"] == ["2026-09-02T22:59:59.999999Z", "2026-09-04T22:59:59.999999Z"]


async def test_it_names_the_event_that_met_the_obligation(tenant: Tenant) -> None:
    await post(tenant, "R1", "referral_received", "2026-08-28T09:00:00Z")
    await post(tenant, "D1", "referral_decision_made", "2026-09-01T15:00:00Z", outcome="assessment")
    found = await explanation(tenant, "referral-decision")
    assert found["met"] == {"event": "D1", "at": "2026-09-01T15:00:00Z"}
    assert found["cancelled"] is None


async def test_it_names_the_event_that_cancelled_the_obligation(tenant: Tenant) -> None:
    await post(tenant, "R1", "referral_received", "2026-08-28T09:00:00Z")
    await post(tenant, "D1", "referral_decision_made", "2026-08-28T15:00:00Z", outcome="early_help")
    found = await explanation(tenant, "first-contact")
    assert found["cancelled"] == {"event": "D1", "at": "2026-08-28T15:00:00Z"}
    assert found["met"] is None


async def test_it_names_the_ruleset_version_and_calendar_in_force(tenant: Tenant) -> None:
    await post(tenant, "R1", "referral_received", "2026-08-28T09:00:00Z")
    found = await explanation(tenant, "referral-decision")
    rules = (await tenant.reader.get("/v1/rules")).json()
    assert found["ruleset"] == {"id": "england-children", "version": rules["version"]}
    assert found["calendar"]["region"] == "england-and-wales"
    assert found["calendar"]["timezone"] == "Europe/London"
    assert found["calendar"]["closures"] == []
    assert found["calendar"]["holiday_data"].startswith("holidays ")


async def test_a_rules_change_gives_a_new_ruleset_version(tenant: Tenant) -> None:
    before = (await tenant.reader.get("/v1/rules")).json()["version"]
    text = builtin_ruleset_text("england-children").replace(
        "closures = []", 'closures = ["2026-11-06"]'
    )
    await tenant.admin.put("/v1/rules", content=text, headers=TOML)
    assert (await tenant.reader.get("/v1/rules")).json()["version"] != before


# The obligation beside it


async def test_the_obligation_has_the_fields_of_a_list_item_and_its_explanation(
    tenant: Tenant,
) -> None:
    await post(tenant, "R1", "referral_received", "2026-08-28T09:00:00Z")
    body = await explained(tenant, "referral-decision")
    assert set(body) == LIST_FIELDS | {"explanation", "pauses"}
    (listed,) = (
        await tenant.reader.get("/v1/obligations", params={"rule_id": "referral-decision"})
    ).json()["items"]
    assert {k: v for k, v in body.items() if k not in ("explanation", "pauses")} == listed


async def test_as_of_gives_the_status_and_what_had_met_it_at_that_instant(tenant: Tenant) -> None:
    await post(tenant, "R1", "referral_received", "2026-08-28T09:00:00Z")
    await post(tenant, "D1", "referral_decision_made", "2026-09-03T09:00:00Z", outcome="assessment")
    body = await explained(tenant, "referral-decision", as_of="2026-09-02T12:00:00Z")
    assert (body["status"], body["met_at"]) == ("overdue", None)
    assert body["explanation"]["met"] is None


# Not found


async def test_an_unknown_obligation_is_a_404_problem(tenant: Tenant) -> None:
    response = await tenant.reader.get("/v1/obligations/ob_000000000000000000000000")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404


async def test_an_obligation_not_yet_opened_at_as_of_is_not_found(tenant: Tenant) -> None:
    await post(tenant, "R1", "referral_received", "2026-08-28T09:00:00Z")
    ob_id = await obligation_id(tenant, "referral-decision")
    response = await tenant.reader.get(f"/v1/obligations/{ob_id}", params={"as_of": "2026-08-27"})
    assert response.status_code == 404
