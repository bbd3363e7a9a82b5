"""What a workbook cannot show is not judged from it, and the report says so: a list without
one of its columns, and a cell that cannot be read, open no deadline for the rules they would
have evidenced (so no overdue and no alert) while everything else still counts. Imported
through the API, extracted on Friday 20 November 2026, read at noon that day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from conftest import Tenant
from workbooks import TEMPLATE_HEADINGS, SheetSpec, annex_a_sheet, build_workbook

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NOON = "2026-11-20T12:00:00Z"
STRATEGY = "Strategy discussion initiating Section 47 Enquiry Start Date"


async def import_sheets(tenant: Tenant, *sheets: SheetSpec) -> dict[str, Any]:
    response = await tenant.writer.post(
        "/v1/imports/annex-a?extracted_on=2026-11-20",
        content=build_workbook(*sheets),
        headers={"content-type": XLSX},
    )
    return await tenant.import_report(response)


async def rules_of(tenant: Tenant, child: str) -> list[str]:
    """The rule of each of the child's deadlines, whatever its status."""
    response = await tenant.reader.get(
        "/v1/obligations", params={"case_id": child, "as_of": NOON, "limit": 1000}
    )
    assert response.status_code == 200, response.text
    return sorted(item["rule_id"] for item in response.json()["items"])


def without(list_number: int, heading: str, rows: Sequence[dict[str, object]]) -> SheetSpec:
    """A list's sheet that lacks one column."""
    headings = [h for h in TEMPLATE_HEADINGS[list_number] if h != heading]
    return annex_a_sheet(list_number, rows, headings=headings)


def renamed(
    list_number: int, heading: str, to: str, rows: Sequence[dict[str, object]]
) -> SheetSpec:
    """A list's sheet whose heading is renamed beyond recognition."""
    headings = [to if h == heading else h for h in TEMPLATE_HEADINGS[list_number]]
    return annex_a_sheet(list_number, rows, headings=headings)


# Columns a list lacks


async def test_list_8_without_its_latest_review_column_opens_no_cla_review_and_says_so(
    tenant: Tenant,
) -> None:
    # Looked after since 1 October: with the column and no review, due 29 October, overdue.
    row = {"Child Unique ID": "NE-1", "Date Started to be Looked After": date(2026, 10, 1)}

    report = await import_sheets(tenant, without(8, "Date of Latest Statutory Review", [row]))

    assert await rules_of(tenant, "NE-1") == []
    assert report["missing_columns"] == [
        {
            "list": 8,
            "sheet": "List_8",
            "column": "Date of Latest Statutory Review",
            "rules": ["cla-review"],
        }
    ]


async def test_list_5_without_its_conference_date_column_opens_no_conference_deadline(
    tenant: Tenant,
) -> None:
    row = {"Child Unique ID": "NE-2", STRATEGY: date(2026, 10, 26)}

    report = await import_sheets(
        tenant, without(5, "Date of Initial Child Protection Conference", [row])
    )

    assert await rules_of(tenant, "NE-2") == []
    assert report["missing_columns"] == [
        {
            "list": 5,
            "sheet": "List_5",
            "column": "Date of Initial Child Protection Conference",
            "rules": ["initial-cp-conference"],
        }
    ]


async def test_list_4_without_its_authorisation_column_leaves_list_3_referrals_unjudged(
    tenant: Tenant,
) -> None:
    referral = {"Child Unique ID": "NE-3", "Date of referral": date(2026, 8, 14)}
    assessment = {"Child Unique ID": "NE-3", "Continuous Assessment Start Date": date(2026, 8, 17)}

    report = await import_sheets(
        tenant,
        annex_a_sheet(3, [referral]),
        without(4, "Continuous Assessment Date of Authorisation", [assessment]),
    )

    assert await rules_of(tenant, "NE-3") == []
    assert report["missing_columns"] == [
        {
            "list": 4,
            "sheet": "List_4",
            "column": "Continuous Assessment Date of Authorisation",
            "rules": ["assessment-completion"],
        }
    ]


async def test_list_7_without_its_visit_column_still_judges_the_reviews(tenant: Tenant) -> None:
    row = {
        "Child Unique ID": "NE-4",
        "Child Protection Plan Start Date": date(2026, 2, 2),
        "Date of latest review conference": date(2026, 7, 15),
    }

    report = await import_sheets(tenant, without(7, "Date of the Last Statutory Visit", [row]))

    assert await rules_of(tenant, "NE-4") == ["cp-review"]
    assert [(m["column"], m["rules"]) for m in report["missing_columns"]] == [
        ("Date of the Last Statutory Visit", ["cp-visit", "cla-visit"])
    ]


async def test_list_3_with_its_nfa_heading_renamed_beyond_recognition_is_read_without_it(
    tenant: Tenant,
) -> None:
    row = {"Child Unique ID": "NE-5", "Date of referral": date(2026, 8, 14)}

    report = await import_sheets(
        tenant, renamed(3, "Referral NFA?", "Outcome: closed (NFA)", [row])
    )

    assert [(item["list"], item["rows"]) for item in report["lists"]] == [(3, 1)]
    assert await rules_of(tenant, "NE-5") == []
    assert [(m["column"], m["rules"]) for m in report["missing_columns"]] == [
        ("Referral NFA?", ["assessment-completion"])
    ]


# Cells that cannot be read


async def test_an_unreadable_visit_date_keeps_the_child_on_a_plan_and_leaves_only_visits_unjudged(
    tenant: Tenant,
) -> None:
    row = {
        "Child Unique ID": "NE-6",
        "Child Protection Plan Start Date": date(2026, 2, 2),
        "Date of the Last Statutory Visit": "unknown",
        "Date of latest review conference": date(2026, 7, 15),
        "Allocated Worker": "W-6",
    }

    report = await import_sheets(tenant, annex_a_sheet(7, [row]))

    assert await rules_of(tenant, "NE-6") == ["cp-review"]
    assert (await tenant.reader.get("/v1/cases/NE-6")).json()["worker_id"] == "W-6"
    assert [(r["row"], r["column"], r["value"], r["rules"]) for r in report["rejected"]] == [
        (3, "Date of the Last Statutory Visit", "unknown", ["cp-visit", "cla-visit"])
    ]
    assert report["lists"][0]["rows_rejected"] == 0


async def test_an_unreadable_plan_start_still_files_the_child_under_their_worker(
    tenant: Tenant,
) -> None:
    row = {
        "Child Unique ID": "NE-7",
        "Child Protection Plan Start Date": "unknown",
        "Date of the Last Statutory Visit": date(2026, 11, 2),
        "Allocated Worker": "W-7",
        "Allocated Team": "T-7",
    }

    report = await import_sheets(tenant, annex_a_sheet(7, [row]))

    case = (await tenant.reader.get("/v1/cases/NE-7")).json()
    assert (case["worker_id"], case["team_id"]) == ("W-7", "T-7")
    assert [r["rules"] for r in report["rejected"]] == [["cp-review", "cp-visit"]]


async def test_an_unreadable_review_date_in_care_leaves_reviews_unjudged_and_visits_judged(
    tenant: Tenant,
) -> None:
    row = {
        "Child Unique ID": "NE-8",
        "Date Started to be Looked After": date(2026, 10, 1),
        "Date of Latest Statutory Review": "unknown",
        "Start Date of Most Recent Placement": date(2026, 10, 1),
    }

    report = await import_sheets(tenant, annex_a_sheet(8, [row]))

    assert await rules_of(tenant, "NE-8") == ["cla-visit"]
    assert [r["rules"] for r in report["rejected"]] == [["cla-review"]]


async def test_an_unreadable_cell_also_leaves_unjudged_what_earlier_extracts_opened(
    tenant: Tenant,
) -> None:
    cells = {"Child Unique ID": "NE-9", "Date Started to be Looked After": date(2026, 10, 1)}
    response = await tenant.writer.post(
        "/v1/imports/annex-a?extracted_on=2026-10-05",
        content=build_workbook(annex_a_sheet(8, [cells])),
        headers={"content-type": XLSX},
    )
    await tenant.import_report(response)

    await import_sheets(
        tenant, annex_a_sheet(8, [{**cells, "Date of Latest Statutory Review": "not known"}])
    )

    assert await rules_of(tenant, "NE-9") == []
