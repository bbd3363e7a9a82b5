"""The worked examples of docs/imports.md, end to end: a workbook extracted on Friday
20 November 2026 is imported through the API and each child's deadlines are read at noon
that day."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from conftest import Tenant
from workbooks import SheetSpec, annex_a_sheet, build_workbook

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NOON = "2026-11-20T12:00:00Z"
LONDON = ZoneInfo("Europe/London")


def end_of(day: str) -> datetime:
    """The last microsecond of a London day, when a deadline on it falls due."""
    return datetime.combine(date.fromisoformat(day), time.max, tzinfo=LONDON).astimezone(UTC)


def row(child: str, **cells: object) -> dict[str, object]:
    return {"Child Unique ID": child, **cells}


async def import_sheets(tenant: Tenant, *sheets: SheetSpec) -> dict[str, Any]:
    response = await tenant.writer.post(
        "/v1/imports/annex-a?extracted_on=2026-11-20",
        content=build_workbook(*sheets),
        headers={"content-type": XLSX},
    )
    return await tenant.import_report(response)


async def deadlines(tenant: Tenant, child: str) -> list[dict[str, Any]]:
    response = await tenant.reader.get(
        "/v1/obligations", params={"case_id": child, "as_of": NOON, "limit": 1000}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def of_rule(items: Sequence[Mapping[str, Any]], rule_id: str) -> list[Mapping[str, Any]]:
    return [item for item in items if item["rule_id"] == rule_id]


def due(item: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(item["due_at"])


async def test_an_assessment_without_authorisation_is_24_working_days_overdue(
    tenant: Tenant,
) -> None:
    await import_sheets(
        tenant,
        annex_a_sheet(3, [row("WE-1", **{"Date of referral": date(2026, 8, 14)})]),
        annex_a_sheet(4, [row("WE-1", **{"Continuous Assessment Start Date": date(2026, 8, 17)})]),
    )

    [assessment] = of_rule(await deadlines(tenant, "WE-1"), "assessment-completion")

    assert due(assessment) == end_of("2026-10-19")
    assert (assessment["status"], assessment["working_days_overdue"]) == ("overdue", 24)


async def test_a_strategy_discussion_without_a_conference_is_4_working_days_overdue(
    tenant: Tenant,
) -> None:
    strategy = "Strategy discussion initiating Section 47 Enquiry Start Date"
    await import_sheets(tenant, annex_a_sheet(5, [row("WE-2", **{strategy: date(2026, 10, 26)})]))

    [conference] = of_rule(await deadlines(tenant, "WE-2"), "initial-cp-conference")

    assert due(conference) == end_of("2026-11-16")
    assert (conference["status"], conference["working_days_overdue"]) == ("overdue", 4)


async def test_a_conference_deemed_unnecessary_leaves_nothing_open(tenant: Tenant) -> None:
    cells = {
        "Strategy discussion initiating Section 47 Enquiry Start Date": date(2026, 10, 26),
        "Was an Initial Child Protection Conference deemed unnecessary?": "a) Yes",
    }
    await import_sheets(tenant, annex_a_sheet(5, [row("WE-3", **cells)]))

    items = await deadlines(tenant, "WE-3")

    assert [item["status"] for item in of_rule(items, "initial-cp-conference")] == ["cancelled"]
    assert [item for item in items if item["status"] in ("upcoming", "due_soon", "overdue")] == []


async def test_a_protection_plan_has_its_next_review_upcoming_and_its_visit_overdue(
    tenant: Tenant,
) -> None:
    cells = {
        "Child Protection Plan Start Date": date(2026, 2, 2),
        "Date of latest review conference": date(2026, 7, 15),
        "Date of the Last Statutory Visit": date(2026, 11, 2),
    }
    await import_sheets(tenant, annex_a_sheet(7, [row("WE-4", **cells)]))

    items = await deadlines(tenant, "WE-4")

    [review] = of_rule(items, "cp-review")
    [visit] = of_rule(items, "cp-visit")
    assert (due(review), review["status"]) == (end_of("2027-01-15"), "upcoming")
    assert (due(visit), visit["status"], visit["working_days_overdue"]) == (
        end_of("2026-11-16"),
        "overdue",
        4,
    )


async def test_an_imported_protection_plan_reports_no_review_or_visit_history(
    tenant: Tenant,
) -> None:
    cells = {
        "Child Protection Plan Start Date": date(2026, 2, 2),
        "Date of latest review conference": date(2026, 7, 15),
        "Date of the Last Statutory Visit": date(2026, 11, 2),
    }
    await import_sheets(tenant, annex_a_sheet(7, [row("WE-4", **cells)]))

    items = await deadlines(tenant, "WE-4")

    assert sorted(item["rule_id"] for item in items) == ["cp-review", "cp-visit"]


async def test_a_child_looked_after_since_1_october_without_a_review_is_overdue(
    tenant: Tenant,
) -> None:
    cells = {"Date Started to be Looked After": date(2026, 10, 1)}
    await import_sheets(tenant, annex_a_sheet(8, [row("WE-5", **cells)]))

    [review] = of_rule(await deadlines(tenant, "WE-5"), "cla-review")

    assert (due(review), review["status"]) == (end_of("2026-10-29"), "overdue")


async def test_a_first_review_on_20_august_makes_the_next_due_today_not_overdue(
    tenant: Tenant,
) -> None:
    cells = {
        "Date Started to be Looked After": date(2026, 8, 3),
        "Date of Latest Statutory Review": date(2026, 8, 20),
    }
    await import_sheets(tenant, annex_a_sheet(8, [row("WE-6", **cells)]))

    reviews = of_rule(await deadlines(tenant, "WE-6"), "cla-review")

    [open_review] = [r for r in reviews if r["status"] in ("upcoming", "due_soon", "overdue")]
    assert (due(open_review), open_review["status"]) == (end_of("2026-11-20"), "due_soon")
    assert [r["status"] for r in reviews if r is not open_review] == ["met"]


async def test_a_child_in_care_since_2024_has_one_review_due_1_march_2027_and_no_history(
    tenant: Tenant,
) -> None:
    cells = {
        "Date Started to be Looked After": date(2024, 1, 10),
        "Date of Latest Statutory Review": date(2026, 9, 1),
    }
    await import_sheets(tenant, annex_a_sheet(8, [row("WE-7", **cells)]))

    reviews = of_rule(await deadlines(tenant, "WE-7"), "cla-review")

    assert [(due(r), r["status"]) for r in reviews] == [(end_of("2027-03-01"), "upcoming")]


async def test_a_referral_opens_no_referral_decision_or_first_contact_deadline(
    tenant: Tenant,
) -> None:
    await import_sheets(
        tenant,
        annex_a_sheet(
            3, [row("WE-8", **{"Date of referral": date(2026, 11, 2), "Referral NFA?": None})]
        ),
    )

    rules = {item["rule_id"] for item in await deadlines(tenant, "WE-8")}

    assert rules.isdisjoint({"referral-decision", "first-contact"})
    assert rules == {"assessment-completion"}


async def test_the_report_says_which_rules_annex_a_cannot_evidence(tenant: Tenant) -> None:
    report = await import_sheets(
        tenant, annex_a_sheet(3, [row("WE-8", **{"Date of referral": date(2026, 11, 2)})])
    )

    assert [item["rule_id"] for item in report["rules_not_evaluable"]] == [
        "referral-decision",
        "first-contact",
        "core-group",
    ]
    assert all(item["reason"] for item in report["rules_not_evaluable"])
