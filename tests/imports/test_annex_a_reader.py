"""The Annex A reader: bytes in, recognised lists of typed rows out, hostile files refused."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from datetime import date, datetime

import pytest
from workbooks import (
    TEMPLATE_HEADINGS,
    DateFormula,
    SheetSpec,
    annex_a_sheet,
    build_workbook,
    damage_member,
    declare_size,
    many_members,
    rewrite_part,
    template_cell,
    with_cached_value,
    with_member,
)

from service.imports.annex_a import (
    AnnexARow,
    AnnexAWorkbook,
    AssessmentRow,
    CareLeaverRow,
    ChildInCareRow,
    ChildInNeedRow,
    ChildProtectionRow,
    ReferralRow,
    Rejection,
    Section47Row,
    SkippedSheet,
    read_annex_a,
)
from service.imports.workbook import WorkbookError

EXTRACTED_ON = date(2026, 11, 20)
SHEET_XML = "xl/worksheets/sheet1.xml"


def read(*sheets: SheetSpec, date1904: bool = False) -> AnnexAWorkbook:
    return read_annex_a(build_workbook(*sheets, date1904=date1904), extracted_on=EXTRACTED_ON)


def referral(cells: Mapping[str, object] | None = None) -> dict[str, object]:
    """A List 3 row keyed by heading, with ``cells`` overriding the defaults."""
    return {"Child Unique ID": "C1", "Date of referral": date(2026, 8, 14), **(cells or {})}


def referrals(
    *rows: Mapping[str, object],
    template_layout: bool = True,
    name: str | None = None,
    headings: Sequence[str] | None = None,
) -> SheetSpec:
    return annex_a_sheet(3, rows, template_layout=template_layout, name=name, headings=headings)


def only_row(result: AnnexAWorkbook) -> AnnexARow:
    [read_list] = result.lists
    [row] = read_list.rows
    return row


def only_referral(result: AnnexAWorkbook) -> ReferralRow:
    [row] = result.rows_of(ReferralRow)
    return row


def referral_date_read_from(value: object) -> date:
    return only_referral(read(referrals(referral({"Date of referral": value})))).referral_date


def rejections_for(value: object, heading: str = "Date of referral") -> tuple[Rejection, ...]:
    return read(referrals(referral({heading: value}))).rejected


# Layouts and recognition -----------------------------------------------------------------


def test_template_layout_has_its_header_below_the_title_row() -> None:
    result = read(referrals(referral()))

    [read_list] = result.lists
    assert (read_list.list_number, read_list.sheet, read_list.header_row) == (3, "List_3", 2)
    assert read_list.rows[0].row == 3


def test_plain_layout_has_its_header_on_the_first_row() -> None:
    result = read(referrals(referral(), template_layout=False))

    [read_list] = result.lists
    assert (read_list.list_number, read_list.sheet, read_list.header_row) == (3, "Referrals", 1)
    assert read_list.rows[0].row == 2


def test_list_is_identified_by_its_headings_not_its_sheet_name() -> None:
    sheet = annex_a_sheet(
        6, [{"Child Unique ID": "C1", "CIN Start Date": date(2026, 1, 5)}], name="List_3"
    )

    [read_list] = read(sheet).lists

    assert read_list.list_number == 6


def test_header_on_the_fifth_row_is_found() -> None:
    sheet = SheetSpec(
        "Late header",
        ["Produced by the performance team"],
        [["filler"], ["filler"], ["filler"], ["Child Unique ID", "CIN Start Date"], ["C1"]],
    )

    [read_list] = read(sheet).lists

    assert read_list.header_row == 5


def test_header_below_the_fifth_row_is_not_looked_for() -> None:
    late = SheetSpec(
        "Too late",
        ["Produced by the performance team"],
        [["filler"]] * 4 + [["Child Unique ID", "CIN Start Date"]],
    )

    result = read(referrals(referral()), late)

    assert SkippedSheet("Too late", "no Annex A list recognised") in result.skipped_sheets


EXPECTED_ROWS: list[tuple[int, dict[str, object], AnnexARow]] = [
    (
        3,
        {"Date of referral": date(2026, 8, 14), "Referral NFA?": "b) No"},
        ReferralRow(
            sheet="List_3",
            row=3,
            child_id="C1",
            team_id="North",
            worker_id="W42",
            referral_date=date(2026, 8, 14),
            referral_nfa=False,
        ),
    ),
    (
        4,
        {
            "Continuous Assessment Start Date": date(2026, 8, 17),
            "Continuous Assessment Date of Authorisation": date(2026, 9, 30),
        },
        AssessmentRow(
            sheet="List_4",
            row=3,
            child_id="C1",
            team_id="North",
            worker_id="W42",
            assessment_start=date(2026, 8, 17),
            assessment_authorised=date(2026, 9, 30),
        ),
    ),
    (
        5,
        {
            "Strategy discussion initiating Section 47 Enquiry Start Date": date(2026, 10, 26),
            "Was an Initial Child Protection Conference deemed unnecessary?": "b) No",
            "Date of Initial Child Protection Conference": date(2026, 11, 9),
        },
        Section47Row(
            sheet="List_5",
            row=3,
            child_id="C1",
            team_id="North",
            worker_id="W42",
            strategy_discussion=date(2026, 10, 26),
            icpc_unnecessary=False,
            icpc_date=date(2026, 11, 9),
        ),
    ),
    (
        6,
        {
            "CIN Start Date": date(2026, 3, 2),
            "Date Child Was Last Seen": date(2026, 10, 1),
            "CIN Closure Date": date(2026, 11, 2),
        },
        ChildInNeedRow(
            sheet="List_6",
            row=3,
            child_id="C1",
            team_id="North",
            worker_id="W42",
            cin_start=date(2026, 3, 2),
            last_seen=date(2026, 10, 1),
            cin_closure=date(2026, 11, 2),
        ),
    ),
    (
        7,
        {
            "Child Protection Plan Start Date": date(2026, 2, 2),
            "Date of the Last Statutory Visit": date(2026, 11, 2),
            "Date of latest review conference": date(2026, 7, 15),
            "Child Protection Plan End Date": date(2026, 11, 16),
        },
        ChildProtectionRow(
            sheet="List_7",
            row=3,
            child_id="C1",
            team_id="North",
            worker_id="W42",
            cp_plan_start=date(2026, 2, 2),
            last_statutory_visit=date(2026, 11, 2),
            latest_review_conference=date(2026, 7, 15),
            cp_plan_end=date(2026, 11, 16),
        ),
    ),
    (
        8,
        {
            "Date Started to be Looked After": date(2024, 1, 10),
            "Date of Latest Statutory Review": date(2026, 9, 1),
            "Date of Last Social Work Visit": date(2026, 10, 20),
            "Date Ceased to be Looked After": date(2026, 11, 13),
            "Start Date of Most Recent Placement": date(2025, 6, 30),
        },
        ChildInCareRow(
            sheet="List_8",
            row=3,
            child_id="C1",
            team_id="North",
            worker_id="W42",
            looked_after_start=date(2024, 1, 10),
            latest_statutory_review=date(2026, 9, 1),
            last_social_work_visit=date(2026, 10, 20),
            ceased_looked_after=date(2026, 11, 13),
            latest_placement_start=date(2025, 6, 30),
        ),
    ),
    (
        9,
        {
            "Eligibility Category": "Relevant",
            "Latest Pathway Plan Review Date": date(2026, 6, 1),
            "Allocated Personal Advisor": "W42",
        },
        CareLeaverRow(
            sheet="List_9",
            row=3,
            child_id="C1",
            team_id="North",
            worker_id="W42",
            latest_pathway_plan_review=date(2026, 6, 1),
        ),
    ),
]


@pytest.mark.parametrize(("list_number", "cells", "expected"), EXPECTED_ROWS)
def test_each_tracked_list_is_read_into_its_row_type(
    list_number: int, cells: dict[str, object], expected: AnnexARow
) -> None:
    row = {"Child Unique ID": "C1", "Allocated Team": "North", "Allocated Worker": "W42"}
    if list_number == 9:
        del row["Allocated Worker"]

    assert only_row(read(annex_a_sheet(list_number, [row | cells]))) == expected


@pytest.mark.parametrize(
    "heading",
    [
        "Referral NFA",
        "Referral NFA?   ",
        "referral nfa?",
        "REFERRAL   NFA?",
        "Referral NFA (Y/N)",
        "Referral NFA? (y/n)",
    ],
)
def test_heading_variants_are_recognised(heading: str) -> None:
    headings = [heading if h == "Referral NFA?" else h for h in TEMPLATE_HEADINGS[3]]
    row = referral({heading: "a) Yes"})

    result = read(referrals(row, headings=headings))

    assert only_referral(result).referral_nfa is True


def test_curly_quotes_in_headings_are_straightened() -> None:
    headings = [
        "Child\u2019s Unique ID" if h == "Child Unique ID" else h for h in TEMPLATE_HEADINGS[3]
    ]
    row = {"Child\u2019s Unique ID": "C7", "Date of referral": date(2026, 8, 14)}

    result = read(referrals(row, headings=headings))

    assert only_row(result).child_id == "C7"


def test_worker_heading_for_care_leavers_may_name_the_personal_advisor() -> None:
    sheet = annex_a_sheet(
        9,
        [{"Child Unique ID": "C1", "Allocated Personal Advisor": "PA7"}],
        headings=["Child Unique ID", "Eligibility Category", "Allocated Personal Advisor"],
    )

    assert only_row(read(sheet)).worker_id == "PA7"


# Cells -------------------------------------------------------------------------------------


def test_excel_dates_are_read() -> None:
    assert referral_date_read_from(date(2026, 3, 2)) == date(2026, 3, 2)


def test_excel_date_times_keep_only_the_date() -> None:
    assert referral_date_read_from(datetime(2026, 3, 2, 14, 30)) == date(2026, 3, 2)  # noqa: DTZ001


def test_text_dates_are_read_day_first() -> None:
    assert referral_date_read_from("02/03/2026") == date(2026, 3, 2)


def test_iso_text_dates_are_read() -> None:
    assert referral_date_read_from(" 2026-03-02 ") == date(2026, 3, 2)


def test_dates_in_a_1904_date_system_workbook_are_read() -> None:
    result = read(referrals(referral({"Date of referral": date(2026, 3, 2)})), date1904=True)

    assert only_referral(result).referral_date == date(2026, 3, 2)


def test_a_date_on_the_extraction_day_is_accepted() -> None:
    assert referral_date_read_from(EXTRACTED_ON) == EXTRACTED_ON


def test_an_impossible_date_is_rejected_and_read_as_empty_keeping_its_row() -> None:
    sheet = referrals(
        referral({"Child Unique ID": "C1"}),
        referral({"Child Unique ID": "C2", "Date of referral": "31/02/2026", "Referral NFA?": "Y"}),
    )

    result = read(sheet)

    assert [
        (row.child_id, row.referral_date, row.referral_nfa) for row in result.rows_of(ReferralRow)
    ] == [
        ("C1", date(2026, 8, 14), None),
        ("C2", None, True),
    ]
    assert result.rejected == (
        Rejection(
            "List_3",
            4,
            "Date of referral",
            "31/02/2026",
            "not a valid calendar date",
            "referral_date",
        ),
    )


def test_month_first_dates_are_rejected_not_reordered() -> None:
    [rejection] = rejections_for("02/13/2026")

    assert rejection.detail == "not a valid calendar date"


def test_date_after_the_extraction_date_is_rejected() -> None:
    [rejection] = rejections_for(date(2026, 11, 21))

    assert (rejection.value, rejection.detail) == ("2026-11-21", "date after the extraction date")


def test_bare_number_in_a_date_column_is_rejected_not_guessed() -> None:
    [rejection] = rejections_for(46083)

    assert (rejection.value, rejection.detail) == ("46083", "not a date")


def test_text_that_is_not_a_date_is_rejected() -> None:
    [rejection] = rejections_for("last week")

    assert rejection.detail == "not a date (expected DD/MM/YYYY or YYYY-MM-DD)"


def test_rejection_names_the_column_by_its_heading_as_written() -> None:
    headings = [
        "Date of Referral  " if h == "Date of referral" else h for h in TEMPLATE_HEADINGS[3]
    ]
    row = {"Child Unique ID": "C1", "Date of Referral  ": "soon"}

    [rejection] = read(referrals(row, headings=headings)).rejected

    assert rejection.column == "Date of Referral"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("a) Yes", True),
        ("Yes", True),
        ("Y", True),
        (" y ", True),
        ("A) YES", True),
        ("b) No", False),
        ("No", False),
        ("N", False),
        ("n", False),
        (True, True),
        (None, None),
    ],
)
def test_yes_no_codes_are_read_as_booleans(code: object, expected: bool | None) -> None:
    result = read(referrals(referral({"Referral NFA?": code})))

    assert only_referral(result).referral_nfa is expected


def test_unknown_yes_no_code_is_rejected() -> None:
    [rejection] = rejections_for("Maybe", heading="Referral NFA?")

    assert (rejection.column, rejection.value) == ("Referral NFA?", "Maybe")


def test_blank_cells_are_read_as_none() -> None:
    sheet = annex_a_sheet(6, [{"Child Unique ID": "C1", "CIN Start Date": date(2026, 3, 2)}])

    row = only_row(read(sheet))

    assert row == ChildInNeedRow(
        sheet="List_6",
        row=3,
        child_id="C1",
        team_id=None,
        worker_id=None,
        cin_start=date(2026, 3, 2),
        last_seen=None,
        cin_closure=None,
    )


def test_formula_cells_are_read_from_their_cached_date_value() -> None:
    data = build_workbook(referrals(referral({"Date of referral": DateFormula("=DATE(2026,3,2)")})))
    data = with_cached_value(data, template_cell(3, "Date of referral", 3), "46083")

    result = read_annex_a(data, extracted_on=EXTRACTED_ON)

    assert only_referral(result).referral_date == date(2026, 3, 2)


def test_formula_cells_are_read_from_their_cached_text_value() -> None:
    data = build_workbook(referrals(referral({"Date of referral": '=TEXT(46083,"dd/mm/yyyy")'})))
    ref = template_cell(3, "Date of referral", 3)
    data = with_cached_value(data, ref, "02/03/2026", type_="str")

    result = read_annex_a(data, extracted_on=EXTRACTED_ON)

    assert only_referral(result).referral_date == date(2026, 3, 2)


def test_numeric_child_id_is_read_as_text() -> None:
    assert only_row(read(referrals(referral({"Child Unique ID": 12345})))).child_id == "12345"


@pytest.mark.parametrize(
    "written",
    [
        "Mathilde\N{NO-BREAK SPACE}Cutsforth",
        " Mathilde Cutsforth\N{EM SPACE}",
        "Mathilde\N{NARROW NO-BREAK SPACE}\N{THIN SPACE}Cutsforth",
        "\N{IDEOGRAPHIC SPACE}Mathilde  Cutsforth\t",
    ],
)
def test_a_workers_name_with_unicode_spaces_reads_as_with_one_plain_space(written: str) -> None:
    row = only_row(read(referrals(referral({"Allocated Worker": written}))))

    assert row.worker_id == "Mathilde Cutsforth"


def test_a_child_unique_id_with_unicode_spaces_reads_as_with_one_plain_space() -> None:
    written = "\N{NO-BREAK SPACE}LA 0042\N{FIGURE SPACE}"

    assert only_row(read(referrals(referral({"Child Unique ID": written})))).child_id == "LA 0042"


def test_row_without_child_unique_id_is_left_out_while_other_rows_are_read() -> None:
    sheet = referrals(referral({"Child Unique ID": None}), referral({"Child Unique ID": "C2"}))

    result = read(sheet)

    assert [row.child_id for row in result.lists[0].rows] == ["C2"]
    assert result.rejected == (
        Rejection("List_3", 3, "Child Unique ID", "", "missing Child Unique ID", "child_id"),
    )


def test_a_blank_defining_date_is_reported_and_its_row_kept() -> None:
    result = read(referrals(referral({"Date of referral": None})))

    [rejection] = result.rejected
    assert rejection.detail == "missing Date of referral"
    assert only_referral(result).referral_date is None


def test_blank_rows_are_ignored() -> None:
    result = read(
        referrals(referral({"Child Unique ID": "C1"}), {}, referral({"Child Unique ID": "C2"}))
    )

    [read_list] = result.lists
    assert ([row.row for row in read_list.rows], read_list.rejected) == ([3, 5], ())


def test_rows_rejected_counts_the_rows_left_out_not_the_cells() -> None:
    unreadable = referral({"Date of referral": "soon", "Referral NFA?": "perhaps"})
    nameless = referral({"Child Unique ID": None, "Date of referral": "soon"})

    [read_list] = read(referrals(unreadable, nameless, referral())).lists

    assert (len(read_list.rejected), read_list.rows_rejected, len(read_list.rows)) == (4, 1, 2)


# Sheets ------------------------------------------------------------------------------------


def test_unrelated_sheet_is_skipped_with_a_reason() -> None:
    notes = SheetSpec("Notes", ["Produced for the inspection"], [["by the data team"]])

    result = read(referrals(referral()), notes)

    assert result.skipped_sheets == (SkippedSheet("Notes", "no Annex A list recognised"),)


@pytest.mark.parametrize(
    ("list_number", "title"),
    [(1, "Contacts"), (2, "Early Help"), (10, "Adoption"), (11, "Adopters")],
)
def test_lists_without_tracked_deadlines_are_recognised_and_skipped(
    list_number: int, title: str
) -> None:
    result = read(referrals(referral()), annex_a_sheet(list_number))

    assert result.skipped_sheets == (
        SkippedSheet(
            f"List_{list_number}",
            f"List {list_number} ({title}): carries no deadline caseclock tracks",
        ),
    )


def test_list_lacking_a_required_column_is_skipped_with_a_reason() -> None:
    headings = [h for h in TEMPLATE_HEADINGS[3] if h != "Date of referral"]
    broken = annex_a_sheet(3, [{"Child Unique ID": "C1"}], headings=headings, name="Refs")

    result = read(broken, annex_a_sheet(6, [{"Child Unique ID": "C1", "CIN Start Date": None}]))

    assert result.skipped_sheets == (
        SkippedSheet("Refs", "List 3 (Referrals) recognised, but lacks Date of referral"),
    )


def test_a_defining_heading_renamed_beyond_recognition_is_named_not_the_list_unrecognised() -> None:
    headings = [
        "Care episode began" if h == "Date Started to be Looked After" else h
        for h in TEMPLATE_HEADINGS[8]
    ]
    renamed = annex_a_sheet(8, [{"Child Unique ID": "C1"}], headings=headings)

    result = read(referrals(referral()), renamed)

    assert result.skipped_sheets == (
        SkippedSheet(
            "List_8",
            "List 8 (Children in care) recognised, but lacks Date Started to be Looked After",
        ),
    )


def test_absent_optional_column_is_named_in_missing_fields() -> None:
    headings = [h for h in TEMPLATE_HEADINGS[9] if h != "Latest Pathway Plan Review Date"]
    sheet = annex_a_sheet(9, [{"Child Unique ID": "C1"}], headings=headings)

    [read_list] = read(sheet).lists

    assert read_list.missing_fields == ("latest_pathway_plan_review",)


def test_rows_of_collects_one_row_type_across_sheets() -> None:
    result = read(
        referrals(referral({"Child Unique ID": "C1"})),
        annex_a_sheet(6, [{"Child Unique ID": "C9", "CIN Start Date": date(2026, 3, 2)}]),
        referrals(referral({"Child Unique ID": "C2"}), name="More referrals"),
    )

    assert [row.child_id for row in result.rows_of(ReferralRow)] == ["C1", "C2"]


def test_personal_data_never_reaches_the_result() -> None:
    personal = {
        "Date of Birth": date(2012, 4, 5),
        "Gender": "gender-marker",
        "Ethnicity": "ethnicity-marker",
        "Disability": "disability-marker",
    }
    child = {"Child Unique ID": "C1", "Date Started to be Looked After": date(2024, 1, 10)}
    sheets = (
        referrals(referral() | personal, referral({"Date of referral": "soon"}) | personal),
        annex_a_sheet(8, [child | personal | {"Placement Postcode": "ZZ9 9ZZ"}]),
    )

    text = repr(read(*sheets))

    for marker in ("2012-04-05", "2012, 4, 5", "marker", "ZZ9 9ZZ"):
        assert marker not in text


# Refused files -----------------------------------------------------------------------------


def refused(data: bytes) -> str:
    with pytest.raises(WorkbookError) as caught:
        read_annex_a(data, extracted_on=EXTRACTED_ON)
    return caught.value.detail


def a_workbook() -> bytes:
    return build_workbook(referrals(referral()))


def test_csv_renamed_xlsx_is_refused() -> None:
    detail = refused(b"Child Unique ID,Date of referral\r\nC1,02/03/2026\r\n")

    assert "not a zip archive" in detail


def test_truncated_zip_is_refused_as_corrupt() -> None:
    data = a_workbook()

    assert refused(data[: len(data) // 2]).startswith("corrupt zip archive")


def test_damaged_member_data_is_refused() -> None:
    assert SHEET_XML in refused(damage_member(a_workbook(), SHEET_XML))


def test_zip_without_a_workbook_part_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", b"<document/>")

    assert "no xl/workbook.xml" in refused(buffer.getvalue())


def test_member_declaring_a_huge_size_is_refused_before_inflating() -> None:
    data = declare_size(a_workbook(), SHEET_XML, 0xFFFF_FFF0)

    assert "expands to" in refused(data)


def test_archive_with_too_many_entries_is_refused() -> None:
    assert "10001 entries" in refused(many_members(10_001))


def test_member_with_an_extreme_compression_ratio_is_refused() -> None:
    data = with_member(a_workbook(), "xl/media/zeros.bin", bytes(16 * 1024 * 1024))

    assert "xl/media/zeros.bin is compressed" in refused(data)


def test_member_inflating_past_its_declared_size_is_refused() -> None:
    data = declare_size(a_workbook(), SHEET_XML, 100)

    assert "beyond its declared size" in refused(data)


def test_xml_entity_expansion_payload_is_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">]>'
    )
    data = rewrite_part(
        a_workbook(), SHEET_XML, lambda xml: laughs + xml.replace(b"<t>C1</t>", b"<t>&lol2;</t>")
    )

    assert "DOCTYPE or ENTITY" in refused(data)


def test_xml_part_not_in_utf8_is_refused() -> None:
    data = rewrite_part(a_workbook(), SHEET_XML, lambda xml: xml.decode().encode("utf-16"))

    assert "not UTF-8" in refused(data)


def test_malformed_sheet_xml_is_refused_as_unreadable() -> None:
    data = rewrite_part(a_workbook(), SHEET_XML, lambda xml: xml.replace(b'r="A3"', b"r=A3"))

    assert refused(data).startswith("the workbook could not be read")


def test_workbook_without_a_known_list_names_the_headings_expected() -> None:
    data = build_workbook(SheetSpec("Sheet1", ["Name", "Date of Birth"], [["A", "B"]]))

    detail = refused(data)

    for heading in ("Referral NFA?", "Continuous Assessment Start Date", "Eligibility Category"):
        assert heading in detail


def test_workbook_with_only_untracked_lists_is_refused() -> None:
    detail = refused(build_workbook(annex_a_sheet(1), annex_a_sheet(11)))

    assert "List 1 (Contacts): carries no deadline caseclock tracks" in detail
