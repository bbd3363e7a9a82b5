"""GET /v1/reports/statutory: the Department's measures counted from stored deadlines.

One authority's year to 31 March 2026, posted as a case-management system would, read at noon
on Friday 20 November 2026. Every expected figure is counted by hand from the statute (Working
Together to Safeguard Children 2023; Care Planning, Placement and Case Review (England)
Regulations 2010, regs. 28 and 33) and the published England and Wales bank holidays: Monday
25 August 2025 (summer), Thursday 25 and Friday 26 December 2025, Thursday 1 January 2026.
A working-day count from a day D counts the working days after D up to the day met.
"""

from __future__ import annotations

from typing import Any

from conftest import Tenant

YEAR = {"from": "2025-04-01", "to": "2026-03-31"}
Event = dict[str, Any]


def event(case_id: str, kind: str, day: str, team: str = "T-1", **data: Any) -> Event:
    found: Event = {
        "id": f"{case_id}-{kind}-{day}",
        "type": kind,
        "case_id": case_id,
        "occurred_at": day,
        "worker_id": f"W-{team}",
        "team_id": team,
    }
    return found | ({"data": data} if data else {})


# Assessments. 45 working days from Monday 1 December 2025 end on Thursday 5 February 2026
# (Christmas Day, Boxing Day and New Year's Day passed over).
ASSESSMENTS = [
    # On time both ways: 45 working days from the referral, 43 from the start on 3 December.
    event("A1", "referral_received", "2025-12-01"),
    event("A1", "assessment_started", "2025-12-03"),
    event("A1", "assessment_completed", "2026-02-05"),
    # 46 working days from the referral (late); 36 from its start on 15 December (on time).
    event("A2", "referral_received", "2025-12-01"),
    event("A2", "assessment_started", "2025-12-15"),
    event("A2", "assessment_completed", "2026-02-06"),
    # 31 working days from the referral; no start recorded.
    event("A3", "referral_received", "2025-12-01"),
    event("A3", "assessment_completed", "2026-01-16"),
    # Referred Monday 3 November 2025, due Thursday 8 January 2026, closed with no further
    # action on Monday 12 January: missed, then cancelled, so late.
    event("A4", "referral_received", "2025-11-03"),
    event("A4", "referral_decision_made", "2026-01-12", outcome="no_further_action"),
    # Closed with no further action the day after the referral: never due, never counted.
    event("A5", "referral_received", "2025-12-01"),
    event("A5", "referral_decision_made", "2025-12-02", outcome="no_further_action"),
]

# Initial conferences, 15 working days from the strategy discussion.
CONFERENCES = [
    # Discussion Monday 1 December 2025: due Monday 22 December, held that day (15).
    event("I1", "strategy_discussion_held", "2025-12-01"),
    event("I1", "section47_started", "2025-12-02"),
    event("I1", "icpc_held", "2025-12-22"),
    # Discussion Wednesday 17 December 2025: due Monday 12 January 2026, held Tuesday 13 (16).
    event("I2", "strategy_discussion_held", "2025-12-17"),
    event("I2", "section47_started", "2025-12-17"),
    event("I2", "icpc_held", "2026-01-13"),
]

PROTECTION = [
    # Plan from Monday 1 September 2025: first review due by 1 December, held Thursday
    # 27 November (63 working days). Unvisited: its visit deadlines are overdue, not judged.
    event("P1", "child_protection_plan_started", "2025-09-01"),
    event("P1", "cp_review_held", "2025-11-27"),
    # Plan from Monday 2 June 2025: first review due by 2 September, held Wednesday
    # 10 September (71 working days, past the summer bank holiday): late.
    event("P2", "child_protection_plan_started", "2025-06-02"),
    event("P2", "cp_review_held", "2025-09-10"),
    # Visits every 10 working days: Friday 13 June (9, on time); next due Friday 27 June,
    # made Monday 30 June (11, late); next due Monday 14 July, never made, and the plan's end
    # on Friday 19 September cancels it: missed, so late.
    event("P2", "child_visited", "2025-06-13"),
    event("P2", "child_visited", "2025-06-30"),
    event("P2", "child_protection_plan_ended", "2025-09-19"),
]

IN_CARE = [
    # Looked after and placed from Monday 3 November 2025. First review within 20 working
    # days (by Monday 1 December), held Friday 28 November (19); next within 3 months (by
    # Saturday 28 February 2026), held Monday 2 March (63 working days): late.
    event("L1", "became_looked_after", "2025-11-03", team="T-2"),
    event("L1", "placement_started", "2025-11-03", team="T-2"),
    event("L1", "cla_review_held", "2025-11-28", team="T-2"),
    event("L1", "cla_review_held", "2026-03-02", team="T-2"),
    # Visits: within a week of the placement (by Monday 10 November), made Friday 7 (4);
    # then within 6 weeks (by Friday 19 December), made Monday 22 December (31): late; then
    # by Monday 2 February 2026, made Thursday 29 January (25).
    event("L1", "child_visited", "2025-11-07", team="T-2"),
    event("L1", "child_visited", "2025-12-22", team="T-2"),
    event("L1", "child_visited", "2026-01-29", team="T-2"),
    # The next visit, due by 12 March, never made: care ends Friday 10 April 2026, after the
    # year, so the miss counts in the next year's report.
    event("L1", "ceased_looked_after", "2026-04-10", team="T-2"),
]


async def seed(tenant: Tenant) -> None:
    every = ASSESSMENTS + CONFERENCES + PROTECTION + IN_CARE
    response = await tenant.writer.post("/v1/events/batch", json={"events": every})
    assert {r["status"] for r in response.json()["results"]} == {"created"}, response.text


async def report(tenant: Tenant, **params: str) -> dict[str, dict[str, Any]]:
    response = await tenant.reader.get("/v1/reports/statutory", params=YEAR | params)
    assert response.status_code == 200, response.text
    return {item["measure"]: item for item in response.json()["items"]}


def figures(item: dict[str, Any]) -> tuple[Any, ...]:
    return (
        item["numerator"],
        item["denominator"],
        item["rate"],
        item["median_working_days"],
        item["excluded"],
    )


async def test_assessments_from_the_referral_count_a_missed_then_cancelled_one_late(
    tenant: Tenant,
) -> None:
    await seed(tenant)
    found = await report(tenant)
    # A1 and A3 on time; A2 late; A4 missed. Median of the met: 31, 45, 46.
    assert figures(found["assessment-from-referral"]) == (2, 4, 0.5, 45, 0)


async def test_assessments_from_their_start_leave_out_one_without_a_start(
    tenant: Tenant,
) -> None:
    await seed(tenant)
    found = await report(tenant)
    # A1 (43) and A2 (36) within 45 working days of their start; A3 has none.
    assert figures(found["assessment-from-start"]) == (2, 2, 1.0, 39.5, 1)


async def test_initial_conferences_count_from_the_strategy_discussion(tenant: Tenant) -> None:
    await seed(tenant)
    found = await report(tenant)
    assert figures(found["initial-cp-conference"]) == (1, 2, 0.5, 15.5, 0)


async def test_child_protection_reviews_and_visits_on_time(tenant: Tenant) -> None:
    await seed(tenant)
    found = await report(tenant)
    assert figures(found["cp-review"]) == (1, 2, 0.5, 67, 0)
    # Median of the visits made: 9 and 11; the missed one has no day met.
    assert figures(found["cp-visit"]) == (1, 3, 0.3333, 10, 0)


async def test_looked_after_reviews_and_visits_on_time(tenant: Tenant) -> None:
    await seed(tenant)
    found = await report(tenant)
    assert figures(found["cla-review"]) == (1, 2, 0.5, 41, 0)
    assert figures(found["cla-visit"]) == (2, 3, 0.6667, 25, 0)


async def test_a_deadline_counts_in_the_period_it_was_judged_in(tenant: Tenant) -> None:
    await seed(tenant)
    found = await report(tenant, **{"from": "2026-04-01", "to": "2027-03-31"})
    # The visit missed in March 2026 is judged when care ends on 10 April 2026.
    assert figures(found["cla-visit"]) == (0, 1, 0.0, None, 0)
    assert figures(found["assessment-from-referral"]) == (0, 0, None, None, 0)


async def test_as_of_counts_only_what_was_judged_by_then(tenant: Tenant) -> None:
    await seed(tenant)
    found = await report(tenant, as_of="2026-01-31")
    # The second review, held 2 March 2026, had not happened by the end of January.
    assert figures(found["cla-review"]) == (1, 1, 1.0, 19, 0)


async def test_a_team_sees_its_own_cases_only(tenant: Tenant) -> None:
    await seed(tenant)
    found = await report(tenant, team_id="T-2")
    assert figures(found["cla-review"]) == (1, 2, 0.5, 41, 0)
    assert figures(found["cp-review"]) == (0, 0, None, None, 0)


async def test_the_report_names_each_measure_and_its_rule(tenant: Tenant) -> None:
    response = await tenant.reader.get("/v1/reports/statutory", params=YEAR)
    body = response.json()
    assert (body["from"], body["to"], body["team_id"]) == ("2025-04-01", "2026-03-31", None)
    assert [(i["measure"], i["rule_id"]) for i in body["items"]] == [
        ("assessment-from-referral", "assessment-completion"),
        ("assessment-from-start", "assessment-completion"),
        ("initial-cp-conference", "initial-cp-conference"),
        ("cp-review", "cp-review"),
        ("cla-review", "cla-review"),
        ("cp-visit", "cp-visit"),
        ("cla-visit", "cla-visit"),
    ]


async def test_the_report_as_csv_has_a_row_per_measure(tenant: Tenant) -> None:
    await seed(tenant)
    response = await tenant.reader.get("/v1/reports/statutory", params=YEAR | {"format": "csv"})
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    lines = response.text.split("\r\n")
    assert lines[0] == (
        "measure,name,rule_id,numerator,denominator,rate,median_working_days,excluded"
    )
    assert lines[2] == (
        "assessment-from-start,Assessments completed within 45 working days of their start,"
        "assessment-completion,2,2,1.0,39.5,1"
    )
    assert len(lines) == 9
    assert lines[-1] == ""


async def problem(tenant: Tenant, **params: str) -> dict[str, Any]:
    response = await tenant.reader.get("/v1/reports/statutory", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


async def test_a_period_ending_before_it_starts_is_a_problem(tenant: Tenant) -> None:
    body = await problem(tenant, **{"from": "2026-04-01", "to": "2026-03-31"})
    assert body["errors"] == [{"parameter": "from", "detail": "must not be after 'to'"}]


async def test_a_period_of_five_years_or_more_is_a_problem(tenant: Tenant) -> None:
    body = await problem(tenant, **{"from": "2021-04-01", "to": "2026-04-01"})
    assert body["errors"][0]["parameter"] == "to"


async def test_a_day_that_is_not_a_date_is_a_problem(tenant: Tenant) -> None:
    body = await problem(tenant, **{"from": "2025-04-01T00:00:00Z", "to": "2026-03-31"})
    assert body["errors"][0]["parameter"] == "from"


async def test_a_period_needs_both_ends(tenant: Tenant) -> None:
    body = await problem(tenant, **{"from": "2025-04-01"})
    assert "to" in str(body["errors"])


async def test_the_report_needs_the_read_scope(tenant: Tenant) -> None:
    response = await tenant.anonymous.get("/v1/reports/statutory", params=YEAR)
    assert response.status_code == 401
