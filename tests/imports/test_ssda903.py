"""The SSDA903 reader and mapping: return CSVs in, periods of care, placements, reviews and
social workers out; later returns replace what they revise; what cannot be believed is
reported and left out; hostile files refused. Files are written here with the return's
columns."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import pytest

from service.domain.rules import builtin_ruleset
from service.imports.returns import MappedReturn, ReturnError
from service.imports.ssda903 import (
    MAX_FILE_BYTES,
    Upload,
    map_returns,
    read_ssda903,
    rules_not_evaluable,
    year_in_name,
)

TODAY = date(2026, 11, 20)
RULESET = builtin_ruleset("england-children")
EPISODES = (
    "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN"
)
REVIEWS = "CHILD,DOB,REVIEW,REVIEW_CODE"
WORKERS = "CHILD,DOB,SW_ID,SW_DECOM,SW_DEC,SW_REASON"
HEADER = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB"


def csv_file(header: str, *rows: str, newline: str = "\n") -> bytes:
    return newline.join((header, *rows, "")).encode()


def episode(decom: str, rne: str, dec: str = "", rec: str = "", child: str = "C1") -> str:
    return f"{child},{decom},{rne},C2,N1,U1,PR1,{dec},{rec},,AB1 2CD,EF3 4GH,SC123456"


def review(day: str, child: str = "C1") -> str:
    return f"{child},03/02/2015,{day},PN1"


def mapped(*files: tuple[str, bytes], year: int | None = None) -> MappedReturn:
    uploads = [Upload(name, data) for name, data in files]
    return map_returns(read_ssda903(uploads, year=year, today=TODAY), ruleset=RULESET)


def ids(result: MappedReturn) -> set[str]:
    return {item.event.id for item in result.events}


# Files -----------------------------------------------------------------------------------


def test_files_are_recognised_by_their_columns_not_their_names() -> None:
    result = mapped(
        ("a_2024.csv", csv_file(REVIEWS, review("10/05/2023"))),
        ("b_2024.csv", csv_file(EPISODES, episode("01/04/2023", "S"))),
    )
    assert [(p.name, p.kind) for p in result.parts] == [
        ("a_2024.csv", "reviews"),
        ("b_2024.csv", "episodes"),
    ]


def test_the_other_files_of_the_return_are_reported_skipped_with_why() -> None:
    result = mapped(
        ("episodes_2024.csv", csv_file(EPISODES, episode("01/04/2023", "S"))),
        ("header_2024.csv", csv_file(HEADER, "C1,1,03/02/2015,WBRI,A123,,")),
        ("notes_2024.csv", csv_file("A,B", "1,2")),
    )
    reasons = {s.sheet: s.reason for s in result.skipped}
    assert "personal details" in reasons["header_2024.csv"]
    assert "recognises" in reasons["notes_2024.csv"]


def test_only_the_columns_used_are_read() -> None:
    read = read_ssda903(
        [Upload("episodes_2024.csv", csv_file(EPISODES, episode("01/04/2023", "S")))],
        year=None,
        today=TODAY,
    )
    kept = repr(read)
    for personal in ("AB1 2CD", "EF3 4GH", "SC123456", "PR1"):
        assert personal not in kept


@pytest.mark.parametrize(
    ("name", "year"),
    [
        ("episodes_2024.csv", 2024),
        ("903_2023-24_reviews.csv", 2024),
        ("SSDA903_202324.csv", 2024),
        ("episodes.csv", None),
    ],
)
def test_the_collection_year_is_read_from_the_file_name(name: str, year: int | None) -> None:
    assert year_in_name(name) == year


def test_a_file_with_no_year_takes_the_year_given() -> None:
    result = mapped(("episodes.csv", csv_file(EPISODES, episode("01/04/2023", "S"))), year=2024)
    assert result.reference_date == date(2024, 3, 31)


def test_a_file_with_no_year_takes_the_one_year_the_other_files_name() -> None:
    result = mapped(
        ("episodes.csv", csv_file(EPISODES, episode("01/04/2023", "S"))),
        ("reviews_2024.csv", csv_file(REVIEWS, review("10/05/2023"))),
    )
    assert [p.reference_date for p in result.parts] == [date(2024, 3, 31)] * 2


def test_a_file_with_no_year_at_all_is_skipped_saying_how_to_give_one() -> None:
    with pytest.raises(ReturnError, match="no collection year"):
        mapped(("episodes.csv", csv_file(EPISODES, episode("01/04/2023", "S"))))


def test_a_csv_with_a_byte_order_mark_and_windows_line_endings_is_read() -> None:
    data = b"\xef\xbb\xbf" + csv_file(EPISODES, episode("01/04/2023", "S"), newline="\r\n")
    assert "ssda903:C1:became_looked_after:2023-04-01" in ids(mapped(("episodes_2024.csv", data)))


def test_a_utf_16_csv_is_read() -> None:
    data = csv_file(EPISODES, episode("01/04/2023", "S")).decode().encode("utf-16")
    assert "ssda903:C1:became_looked_after:2023-04-01" in ids(mapped(("episodes_2024.csv", data)))


def test_a_windows_1252_csv_is_read() -> None:
    data = csv_file(EPISODES, episode("01/04/2023", "S", child="Zoë1")).decode().encode("cp1252")
    assert "ssda903:Zoë1:became_looked_after:2023-04-01" in ids(mapped(("episodes_2024.csv", data)))


def test_a_binary_file_is_skipped_as_not_text() -> None:
    with pytest.raises(ReturnError, match="not a text file"):
        mapped(("episodes_2024.csv", b"CHILD,DECOM\x00\x00\x01"))


def test_a_zip_of_the_files_is_read() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("903/episodes_2024.csv", csv_file(EPISODES, episode("01/04/2023", "S")))
        archive.writestr("903/reviews_2024.csv", csv_file(REVIEWS, review("10/05/2023")))
    result = mapped(("return.zip", buffer.getvalue()))
    assert {
        "ssda903:C1:became_looked_after:2023-04-01",
        "ssda903:C1:cla_review_held:2023-05-10",
    } <= ids(result)


def test_a_zip_that_expands_past_a_safe_size_is_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("episodes_2024.csv", b"\n" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ReturnError, match="safe size"):
        mapped(("return.zip", buffer.getvalue()))


def test_a_damaged_zip_is_refused() -> None:
    with pytest.raises(ReturnError, match="not a readable zip"):
        mapped(("return.zip", b"PK\x03\x04" + b"\x00" * 40))


def test_a_file_over_the_size_limit_is_refused() -> None:
    data = csv_file(EPISODES) + b"\n" * MAX_FILE_BYTES
    with pytest.raises(ReturnError, match="MiB"):
        mapped(("episodes_2024.csv", data))


# Periods of care, placements, reviews, workers -------------------------------------------


def test_a_period_of_care_starts_with_rne_s_and_its_first_placement() -> None:
    result = mapped(("episodes_2024.csv", csv_file(EPISODES, episode("03/04/2023", "S"))))
    assert ids(result) == {
        "ssda903:C1:became_looked_after:2023-04-03",
        "ssda903:C1:placement_started:2023-04-03",
    }


def test_an_episode_ending_x1_continues_the_period_into_the_next_placement() -> None:
    result = mapped(
        (
            "episodes_2024.csv",
            csv_file(
                EPISODES,
                episode("03/04/2023", "S", "10/07/2023", "X1"),
                episode("10/07/2023", "P", "01/09/2023", "X1"),
                episode("01/09/2023", "L"),
            ),
        )
    )
    assert ids(result) == {
        "ssda903:C1:became_looked_after:2023-04-03",
        "ssda903:C1:placement_started:2023-04-03",
        "ssda903:C1:placement_started:2023-07-10",
    }


def test_any_other_reason_for_ending_ends_the_period_of_care() -> None:
    result = mapped(
        (
            "episodes_2024.csv",
            csv_file(EPISODES, episode("03/04/2023", "S", "10/07/2023", "E11")),
        )
    )
    assert "ssda903:C1:ceased_looked_after:2023-07-10" in ids(result)


def test_every_review_is_held_on_its_day() -> None:
    result = mapped(
        ("episodes_2024.csv", csv_file(EPISODES, episode("03/04/2023", "S"))),
        ("reviews_2024.csv", csv_file(REVIEWS, review("28/04/2023"), review("20/07/2023"))),
    )
    assert {
        "ssda903:C1:cla_review_held:2023-04-28",
        "ssda903:C1:cla_review_held:2023-07-20",
    } <= ids(result)


def test_social_worker_episodes_allocate_the_child_to_the_worker() -> None:
    result = mapped(
        ("sw_2024.csv", csv_file(WORKERS, "C1,03/02/2015,SW1234,03/04/2023,,")),
    )
    (allocation,) = result.events
    assert (allocation.event.type, allocation.event.worker_id) == ("case_allocated", "SW1234")


def test_the_rules_a_return_cannot_judge_are_named_with_why() -> None:
    found = {n.rule_id: n.reason for n in rules_not_evaluable(RULESET)}
    assert "child_visited" in found["cla-visit"]
    assert "cla-review" not in found


def test_a_period_begun_before_every_return_leaves_the_review_chain_unjudged_and_says_so() -> None:
    result = mapped(("episodes_2024.csv", csv_file(EPISODES, episode("03/04/2023", "P"))))
    assert [n.rule_id for n in result.unjudged] == ["cla-review"]


# Several years ---------------------------------------------------------------------------


def test_an_episode_open_last_year_and_ended_this_year_is_one_episode_unreported() -> None:
    result = mapped(
        ("episodes_2023.csv", csv_file(EPISODES, episode("01/06/2022", "S"))),
        ("episodes_2024.csv", csv_file(EPISODES, episode("01/06/2022", "S", "05/05/2023", "E11"))),
    )
    assert result.revised == ()
    assert "ssda903:C1:ceased_looked_after:2023-05-05" in ids(result)


def test_a_later_returns_version_of_an_episode_replaces_the_earlier_and_is_reported() -> None:
    result = mapped(
        ("episodes_2023.csv", csv_file(EPISODES, episode("01/06/2022", "S", "01/05/2023"))),
        ("episodes_2024.csv", csv_file(EPISODES, episode("03/06/2022", "S"))),
        year=None,
    )
    assert "ssda903:C1:became_looked_after:2022-06-01" not in ids(result)
    assert "ssda903:C1:became_looked_after:2022-06-03" in ids(result)
    (revision,) = result.revised
    assert (revision.sheet, revision.row, revision.value) == (
        "episodes_2023.csv",
        2,
        "01/06/2022",
    )


def test_an_episode_the_later_return_does_not_cover_stays() -> None:
    result = mapped(
        (
            "episodes_2023.csv",
            csv_file(EPISODES, episode("01/06/2022", "S", "01/09/2022", "E11")),
        ),
        ("episodes_2024.csv", csv_file(EPISODES, episode("03/06/2023", "S"))),
    )
    assert {
        "ssda903:C1:ceased_looked_after:2022-09-01",
        "ssda903:C1:became_looked_after:2023-06-03",
    } <= ids(result)
    assert result.revised == ()


# Rows not believed -----------------------------------------------------------------------


def rejected(result: MappedReturn) -> list[tuple[str, int, str, str]]:
    return [(r.sheet, r.row, r.column, r.detail) for r in result.rejected]


def test_a_review_before_the_period_of_care_began_is_refused() -> None:
    result = mapped(
        ("episodes_2024.csv", csv_file(EPISODES, episode("03/04/2023", "S"))),
        ("reviews_2024.csv", csv_file(REVIEWS, review("02/04/2023"))),
    )
    assert rejected(result) == [
        ("reviews_2024.csv", 2, "REVIEW", "before the period of care began (03/04/2023)")
    ]
    assert "ssda903:C1:cla_review_held:2023-04-02" not in ids(result)


def test_a_review_after_the_returns_reference_date_is_refused() -> None:
    result = mapped(("reviews_2024.csv", csv_file(REVIEWS, review("01/05/2029"))))
    assert rejected(result) == [
        (
            "reviews_2024.csv",
            2,
            "REVIEW",
            "after the return's reference date (2024-03-31); the row is left out",
        )
    ]
    assert result.events == ()


def test_an_episode_that_ends_before_it_starts_is_refused() -> None:
    result = mapped(
        ("episodes_2024.csv", csv_file(EPISODES, episode("03/04/2023", "S", "01/04/2023", "E11")))
    )
    ((sheet, row, column, detail),) = rejected(result)
    assert (sheet, row, column) == ("episodes_2024.csv", 2, "DEC")
    assert "ends (2023-04-01) before it starts (2023-04-03)" in detail
    assert result.events == ()


def test_an_episode_overlapping_the_one_before_is_refused() -> None:
    result = mapped(
        (
            "episodes_2024.csv",
            csv_file(
                EPISODES,
                episode("03/04/2023", "S", "10/07/2023", "X1"),
                episode("01/07/2023", "P"),
            ),
        )
    )
    ((sheet, row, column, detail),) = rejected(result)
    assert (sheet, row, column) == ("episodes_2024.csv", 3, "DECOM")
    assert "overlaps the episode at episodes_2024.csv line 2" in detail
    assert "ssda903:C1:placement_started:2023-07-01" not in ids(result)


def test_a_date_not_written_dd_mm_yyyy_is_refused() -> None:
    result = mapped(("reviews_2024.csv", csv_file(REVIEWS, review("2023/05/10"))))
    assert rejected(result)[0][3] == "not a date (DD/MM/YYYY); the row is left out"


def test_a_row_without_a_child_is_left_out() -> None:
    result = mapped(("reviews_2024.csv", csv_file(REVIEWS, review("10/05/2023", child=""))))
    assert [r.field for r in result.rejected] == ["row"]
    assert result.events == ()
