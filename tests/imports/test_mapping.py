"""Annex A rows to caseclock events (docs/imports.md, "From rows to events"), without a database."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import pytest
from workbooks import (
    DateFormula,
    SheetSpec,
    annex_a_sheet,
    build_workbook,
    template_cell,
    with_cached_value,
)

from service.domain.rules import builtin_ruleset, load_ruleset
from service.imports.annex_a import read_annex_a
from service.imports.mapping import (
    FIELD_EVENT_TYPES,
    FIELD_HEADINGS,
    MappedWorkbook,
    extraction_day,
    map_workbook,
    rules_not_evaluable,
)

EXTRACTED_ON = date(2026, 11, 20)
CHILDREN = builtin_ruleset("england-children")
CALENDAR = CHILDREN.calendar
IMPORTED = {"source": "annex-a"}
LATEST = {"sequence": 2, "source": "annex-a"}
# Excel date-times have no zone: a cell formatted with a time reads back naive.
EXCEL_DATE_TIME = datetime(2026, 8, 14, 9, 30)  # noqa: DTZ001
STRATEGY = "Strategy discussion initiating Section 47 Enquiry Start Date"
UNNECESSARY = "Was an Initial Child Protection Conference deemed unnecessary?"


def mapped_bytes(data: bytes) -> MappedWorkbook:
    return map_workbook(read_annex_a(data, extracted_on=EXTRACTED_ON), ruleset=CHILDREN)


def mapped(*sheets: SheetSpec) -> MappedWorkbook:
    return mapped_bytes(build_workbook(*sheets))


def sheet(list_number: int, *rows: Mapping[str, object], **options: Any) -> SheetSpec:
    return annex_a_sheet(list_number, [{"Child Unique ID": "C1", **row} for row in rows], **options)


def events(result: MappedWorkbook) -> list[tuple[str, dict[str, Any]]]:
    """(id, data) of every event, in the order they were made."""
    return [(item.event.id, dict(item.event.data)) for item in result.events]


def ids(result: MappedWorkbook) -> list[str]:
    """Ids of the events of what happened, leaving out the snapshot's record of itself."""
    return [item.event.id for item in result.events if item.event.type != "snapshot_taken"]


# Each list's meaning


ROWS_AND_EVENTS: list[tuple[int, dict[str, object], list[tuple[str, dict[str, Any]]]]] = [
    (
        3,
        {"Date of referral": date(2026, 8, 14), "Referral NFA?": "b) No"},
        [("annex-a:C1:referral_received:2026-08-14", IMPORTED)],
    ),
    (
        3,
        {"Date of referral": date(2026, 8, 14), "Referral NFA?": "a) Yes"},
        [
            ("annex-a:C1:referral_received:2026-08-14", IMPORTED),
            (
                "annex-a:C1:referral_decision_made:2026-08-14",
                {"outcome": "no_further_action", **IMPORTED},
            ),
        ],
    ),
    (
        4,
        {
            "Continuous Assessment Start Date": date(2026, 8, 17),
            "Continuous Assessment Date of Authorisation": date(2026, 9, 30),
        },
        [
            ("annex-a:C1:referral_received:2026-08-17", IMPORTED),
            ("annex-a:C1:assessment_started:2026-08-17", IMPORTED),
            ("annex-a:C1:assessment_completed:2026-09-30", IMPORTED),
        ],
    ),
    (
        5,
        {
            STRATEGY: date(2026, 10, 26),
            UNNECESSARY: "b) No",
            "Date of Initial Child Protection Conference": date(2026, 11, 9),
        },
        [
            ("annex-a:C1:section47_started:2026-10-26", IMPORTED),
            ("annex-a:C1:icpc_held:2026-11-09", IMPORTED),
        ],
    ),
    (
        5,
        {STRATEGY: date(2026, 10, 26), UNNECESSARY: "Y"},
        [
            ("annex-a:C1:section47_started:2026-10-26", IMPORTED),
            ("annex-a:C1:section47_completed:2026-10-26", {"outcome": "no_conference", **IMPORTED}),
        ],
    ),
    (
        6,
        {
            "CIN Start Date": date(2026, 3, 2),
            "Date Child Was Last Seen": date(2026, 10, 1),
            "CIN Closure Date": date(2026, 11, 2),
        },
        [
            ("annex-a:C1:child_visited:2026-10-01", LATEST),
            ("annex-a:C1:case_closed:2026-11-02", IMPORTED),
        ],
    ),
    (
        7,
        {
            "Child Protection Plan Start Date": date(2026, 2, 2),
            "Date of the Last Statutory Visit": date(2026, 11, 2),
            "Date of latest review conference": date(2026, 7, 15),
            "Child Protection Plan End Date": date(2026, 11, 19),
        },
        [
            ("annex-a:C1:child_protection_plan_started:2026-02-02", IMPORTED),
            ("annex-a:C1:child_visited:2026-11-02", LATEST),
            ("annex-a:C1:cp_review_held:2026-07-15", LATEST),
            ("annex-a:C1:child_protection_plan_ended:2026-11-19", IMPORTED),
        ],
    ),
    (
        8,
        {
            "Date Started to be Looked After": date(2024, 1, 10),
            "Date of Latest Statutory Review": date(2026, 9, 1),
            "Date of Last Social Work Visit": date(2026, 10, 20),
            "Start Date of Most Recent Placement": date(2025, 6, 2),
            "Date Ceased to be Looked After": date(2026, 11, 18),
        },
        [
            ("annex-a:C1:became_looked_after:2024-01-10", IMPORTED),
            ("annex-a:C1:cla_review_held:2026-09-01", LATEST),
            ("annex-a:C1:child_visited:2026-10-20", LATEST),
            ("annex-a:C1:placement_started:2025-06-02", IMPORTED),
            ("annex-a:C1:ceased_looked_after:2026-11-18", IMPORTED),
        ],
    ),
    (
        9,
        {"Eligibility Category": "Relevant", "Latest Pathway Plan Review Date": date(2026, 9, 1)},
        [("annex-a:C1:pathway_plan_reviewed:2026-09-01", LATEST)],
    ),
]


@pytest.mark.parametrize(
    ("list_number", "cells", "expected"),
    ROWS_AND_EVENTS,
    ids=[f"list-{n}-{i}" for i, (n, _, _) in enumerate(ROWS_AND_EVENTS)],
)
def test_each_list_row_becomes_the_events_annex_a_describes(
    list_number: int, cells: dict[str, object], expected: list[tuple[str, dict[str, Any]]]
) -> None:
    assert events(mapped(sheet(list_number, cells))) == expected


def test_blank_optional_cells_make_no_events() -> None:
    result = mapped(sheet(7, {"Child Protection Plan Start Date": date(2026, 2, 2)}))

    assert ids(result) == ["annex-a:C1:child_protection_plan_started:2026-02-02"]


def test_a_care_leaver_without_a_review_date_makes_no_event() -> None:
    assert ids(mapped(sheet(9, {"Eligibility Category": "Relevant"}))) == []


def test_an_event_happens_at_midnight_london_time_on_its_day() -> None:
    [item] = mapped(sheet(3, {"Date of referral": date(2026, 8, 14)})).events

    assert item.event.occurred_at == datetime(2026, 8, 13, 23, tzinfo=UTC)
    assert item.event.case_id == "C1"


def test_events_carry_no_allocation_which_travels_separately() -> None:
    result = mapped(
        sheet(
            3,
            {
                "Date of referral": date(2026, 8, 14),
                "Allocated Worker": "W1",
                "Allocated Team": "T1",
            },
        )
    )

    assert {(i.event.worker_id, i.event.team_id) for i in result.events} == {(None, None)}
    [allocation] = result.allocations
    assert (allocation.child_id, allocation.worker_id, allocation.team_id) == ("C1", "W1", "T1")


# The assessment's referral


def referral_events(*sheets: SheetSpec) -> list[str]:
    """The referral_received ids of a workbook that also has an assessment starting 17 Aug."""
    result = mapped(*sheets, sheet(4, {"Continuous Assessment Start Date": date(2026, 8, 17)}))
    return [item.event.id for item in result.events if item.event.type == "referral_received"]


def test_an_assessment_runs_from_the_childs_referral_on_or_before_its_start() -> None:
    referrals = sheet(3, {"Date of referral": date(2026, 8, 14)})

    assert referral_events(referrals) == ["annex-a:C1:referral_received:2026-08-14"]


def test_a_referral_after_an_assessments_start_is_not_its_referral() -> None:
    referrals = sheet(3, {"Date of referral": date(2026, 9, 1)})

    assert referral_events(referrals) == [
        "annex-a:C1:referral_received:2026-09-01",
        "annex-a:C1:referral_received:2026-08-17",
    ]


def test_without_a_referral_an_assessment_runs_from_the_latest_cin_start_before_it() -> None:
    cin = sheet(6, {"CIN Start Date": date(2026, 3, 2)}, {"CIN Start Date": date(2026, 8, 10)})

    assert referral_events(cin) == ["annex-a:C1:referral_received:2026-08-10"]


def test_without_a_referral_or_cin_start_before_it_an_assessment_runs_from_its_start() -> None:
    later_cin = sheet(6, {"CIN Start Date": date(2026, 9, 1)})

    assert referral_events(later_cin) == ["annex-a:C1:referral_received:2026-08-17"]


def test_a_referral_in_list_3_and_list_4_is_one_event_credited_to_list_3() -> None:
    result = mapped(
        sheet(4, {"Continuous Assessment Start Date": date(2026, 8, 17)}),
        sheet(3, {"Date of referral": date(2026, 8, 14)}),
    )

    [referral] = [i for i in result.events if i.event.type == "referral_received"]
    assert (referral.list_number, referral.sheet, referral.column) == (
        3,
        "List_3",
        "Date of referral",
    )


# Latest-only dates


@pytest.mark.parametrize(
    ("review", "sequenced"),
    [
        (date(2026, 8, 3), False),  # the day care started
        (date(2026, 9, 1), False),  # the 20th working day (31 August is a bank holiday)
        (date(2026, 9, 2), True),
        (date(2026, 8, 1), True),  # before this period of care
    ],
)
def test_a_cla_review_is_the_first_only_inside_the_20_working_day_window(
    review: date, sequenced: bool
) -> None:
    result = mapped(
        sheet(
            8,
            {
                "Date Started to be Looked After": date(2026, 8, 3),
                "Date of Latest Statutory Review": review,
            },
        )
    )

    [data] = [dict(i.event.data) for i in result.events if i.event.type == "cla_review_held"]
    assert ("sequence" in data) is sequenced


# Layouts, headings, date forms


def test_either_layout_maps_to_the_same_events() -> None:
    cells = {"Date of referral": date(2026, 8, 14), "Referral NFA?": "Yes"}

    assert ids(mapped(sheet(3, cells))) == ids(mapped(sheet(3, cells, template_layout=False)))


def test_heading_variants_map_to_the_same_events() -> None:
    variants = (
        "Child\N{RIGHT SINGLE QUOTATION MARK}s Unique ID ",
        "Gender",
        "DATE OF REFERRAL",
        "Referral NFA (Y/N)",
        "allocated   team",
        "Allocated Social Worker",
    )
    row = {
        "Child\N{RIGHT SINGLE QUOTATION MARK}s Unique ID ": "C1",
        "DATE OF REFERRAL": date(2026, 8, 14),
        "Referral NFA (Y/N)": "Y",
        "allocated   team": "T1",
        "Allocated Social Worker": "W1",
    }

    varied = mapped(annex_a_sheet(3, [row], headings=variants))
    plain = mapped(
        sheet(
            3,
            {
                "Date of referral": date(2026, 8, 14),
                "Referral NFA?": "Yes",
                "Allocated Team": "T1",
                "Allocated Worker": "W1",
            },
        )
    )

    assert events(varied) == events(plain)
    assert varied.allocations[0].worker_id == "W1"


@pytest.mark.parametrize(
    "written",
    ["14/08/2026", "2026-08-14", date(2026, 8, 14), EXCEL_DATE_TIME],
)
def test_excel_dates_and_both_string_forms_give_the_same_event(written: object) -> None:
    assert ids(mapped(sheet(3, {"Date of referral": written}))) == [
        "annex-a:C1:referral_received:2026-08-14"
    ]


def test_a_formula_cell_gives_the_event_of_its_cached_date() -> None:
    data = build_workbook(sheet(3, {"Date of referral": DateFormula("=DATE(2026,8,14)")}))
    data = with_cached_value(data, template_cell(3, "Date of referral", 3), "46248")

    assert ids(mapped_bytes(data)) == ["annex-a:C1:referral_received:2026-08-14"]


def test_an_unrelated_extra_sheet_is_skipped_and_changes_nothing() -> None:
    referrals = sheet(3, {"Date of referral": date(2026, 8, 14)})
    notes = SheetSpec("Notes", ["Produced by the performance team"], [["for Ofsted"]])

    with_notes = read_annex_a(build_workbook(notes, referrals), extracted_on=EXTRACTED_ON)

    assert [s.sheet for s in with_notes.skipped_sheets] == ["Notes"]
    assert ids(map_workbook(with_notes, ruleset=CHILDREN)) == ids(mapped(referrals))


# Allocation


def test_the_allocation_comes_from_the_highest_numbered_list_naming_one() -> None:
    result = mapped(
        sheet(3, {"Date of referral": date(2026, 8, 14), "Allocated Worker": "W-referral"}),
        sheet(
            8, {"Date Started to be Looked After": date(2024, 1, 10), "Allocated Worker": "W-care"}
        ),
        sheet(9, {"Eligibility Category": "Relevant"}),
    )

    [allocation] = result.allocations
    assert (allocation.worker_id, allocation.list_number) == ("W-care", 8)


def test_within_a_list_the_allocation_of_the_latest_row_wins() -> None:
    result = mapped(
        sheet(
            3,
            {"Date of referral": date(2026, 9, 1), "Allocated Worker": "W-later"},
            {"Date of referral": date(2026, 6, 1), "Allocated Worker": "W-earlier"},
        )
    )

    assert [a.worker_id for a in result.allocations] == ["W-later"]


def test_a_child_without_an_allocated_worker_or_team_has_no_allocation() -> None:
    assert mapped(sheet(3, {"Date of referral": date(2026, 8, 14)})).allocations == ()


# Rows caseclock cannot count from


def test_a_date_before_1900_is_reported_and_read_as_empty_while_its_row_still_counts() -> None:
    result = mapped(sheet(3, {"Date of referral": "14/08/1850", "Allocated Worker": "W1"}))

    [rejection] = result.rejected
    assert (rejection.sheet, rejection.row, rejection.column, rejection.detail) == (
        "List_3",
        3,
        "Date of referral",
        "date before 1900",
    )
    assert ids(result) == []
    assert [allocation.worker_id for allocation in result.allocations] == ["W1"]


def test_a_child_id_too_long_for_an_event_id_rejects_its_row() -> None:
    result = mapped(sheet(3, {"Child Unique ID": "C" * 151, "Date of referral": date(2026, 8, 14)}))

    assert [r.detail for r in result.rejected] == ["longer than 150 characters"]
    assert result.events == ()


# What the workbook cannot show


# Read from the built-in ruleset: the rules each list's events open, meet or cancel, among
# those imported events open at all (not referral-decision, first-contact or core-group).
RULES_FED_BY_LIST: dict[int, list[str]] = {
    3: ["assessment-completion"],
    4: ["assessment-completion"],
    5: ["initial-cp-conference"],
    # A CIN closure closes the case, which cancels every deadline.
    6: [
        "assessment-completion",
        "initial-cp-conference",
        "cp-review",
        "cp-visit",
        "cla-review",
        "cla-visit",
        "pathway-plan-review",
    ],
    7: ["cp-review", "cp-visit", "cla-visit"],
    8: ["cp-visit", "cla-review", "cla-visit"],
    9: ["pathway-plan-review"],
}


@pytest.mark.parametrize("absent", sorted(RULES_FED_BY_LIST))
def test_a_workbook_without_one_of_lists_3_to_9_names_it_with_the_rules_it_would_have_fed(
    absent: int,
) -> None:
    result = mapped(*(annex_a_sheet(n) for n in RULES_FED_BY_LIST if n != absent))

    assert [(m.list_number, m.rules) for m in result.missing_lists] == [
        (absent, tuple(RULES_FED_BY_LIST[absent]))
    ]


def test_each_fields_event_types_are_those_its_rows_make() -> None:
    """FIELD_EVENT_TYPES, which says what an unreadable cell or a missing column leaves
    unknown, agrees with the events rows with every column filled in make."""
    full: dict[int, dict[str, object]] = {
        number: cells for number, cells, _ in ROWS_AND_EVENTS if number not in (3, 5)
    }
    full[3] = {"Date of referral": date(2026, 8, 14), "Referral NFA?": "Yes"}
    full[5] = {
        STRATEGY: date(2026, 10, 26),
        UNNECESSARY: "Yes",
        "Date of Initial Child Protection Conference": date(2026, 11, 9),
    }
    workbook = read_annex_a(
        build_workbook(*(sheet(n, cells) for n, cells in full.items())), extracted_on=EXTRACTED_ON
    )
    mapper_rows = [(read.list_number, row) for read in workbook.lists for row in read.rows]

    made = {
        (item.column, item.event.type)
        for item in map_workbook(workbook, ruleset=CHILDREN).events
        if item.event.type != "snapshot_taken"
    }

    declared = {
        (FIELD_HEADINGS[name], event_type)
        for _, row in mapper_rows
        for name in (f.name for f in dataclasses.fields(row))
        for event_type in FIELD_EVENT_TYPES.get(name, ())
        if event_type != "case_allocated"
    }
    assert made <= declared


def test_a_snapshot_records_a_latest_visit_that_proves_the_next_visit_missed() -> None:
    # On a plan since 2 Feb, reviewed 15 Jul (next due 15 Jan 2027); the visit after 2 Nov
    # was due by 16 Nov (10 working days).
    plan = {
        "Child Protection Plan Start Date": date(2026, 2, 2),
        "Date of latest review conference": date(2026, 7, 15),
        "Date of the Last Statutory Visit": date(2026, 11, 2),
    }

    result = mapped(annex_a_sheet(6), sheet(7, plan), annex_a_sheet(8))

    [snapshot] = [i.event for i in result.events if i.event.type == "snapshot_taken"]
    assert (snapshot.id, dict(snapshot.data)) == (
        "annex-a:C1:snapshot_taken:2026-11-20",
        {"source": "annex-a", "latest": {"child_visited": "2026-11-02"}, "unseen": []},
    )


# Rules the workbook cannot evidence


def test_the_children_rules_not_evaluable_are_the_decision_contact_and_core_group() -> None:
    assert [n.rule_id for n in rules_not_evaluable(CHILDREN)] == [
        "referral-decision",
        "first-contact",
        "core-group",
    ]


def test_rules_not_evaluable_follow_an_organisations_own_ruleset() -> None:
    ruleset = load_ruleset(
        """
[[rules]]
id = "placement-meeting"
name = "Placement meeting within 5 working days"
source = "Local"
starts_on = [{type = "placement_started", unless = {source = "annex-a"}}]
due = "5 working days"
met_by = ["care_plan_reviewed"]

[[rules]]
id = "visits"
name = "Visits"
source = "Local"
starts_on = ["placement_started"]
due = "1 week"
met_by = ["child_visited"]
"""
    )

    [found] = rules_not_evaluable(ruleset)

    assert found.rule_id == "placement-meeting"
    assert "placement_started" in found.reason
    assert "care_plan_reviewed" in found.reason


def test_the_adults_ruleset_has_no_rule_annex_a_leaves_out() -> None:
    assert rules_not_evaluable(builtin_ruleset("england-adults")) == []


# The extraction day


NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def test_the_extraction_day_defaults_to_today_in_the_organisations_timezone() -> None:
    late_evening = datetime(2026, 6, 30, 23, 30, tzinfo=UTC)  # 00:30 on 1 July in London

    assert extraction_day(None, CALENDAR, late_evening) == date(2026, 7, 1)


@pytest.mark.parametrize("text", ["2026-11-21", "20/11/2026", "2026-W47-5", "1899-12-31", "soon"])
def test_an_extraction_day_must_be_a_plain_date_from_1900_up_to_today(text: str) -> None:
    with pytest.raises(ValueError, match=r"must be|after today"):
        extraction_day(text, CALENDAR, NOW)


def test_today_is_a_valid_extraction_day() -> None:
    assert extraction_day(" 2026-11-20 ", CALENDAR, NOW) == date(2026, 11, 20)
