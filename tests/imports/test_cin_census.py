"""The CIN census reader and mapping: XML in, the child's history as events out, hostile
files refused. Files are written here as the census schemas (2017 to 2026) lay them out."""

from __future__ import annotations

from datetime import date

import pytest

from service.domain.rules import builtin_ruleset, builtin_ruleset_text, load_ruleset
from service.imports.cin_census import (
    MAX_CENSUS_BYTES,
    map_census,
    read_cin_census,
    rules_not_evaluable,
)
from service.imports.report import OutcomeCounts
from service.imports.returns import ReturnError, build_return_report

TODAY = date(2026, 11, 20)
RULESET = builtin_ruleset("england-children")


def census(
    *children: str, reference: str = "2024-03-31", year: str = "2024", head: str = ""
) -> bytes:
    """A census file holding `children` (each a <Child> element's inner XML)."""
    body = "".join(f"<Child>{child}</Child>" for child in children)
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{head}\n'
        "<Message>\n<Header>\n<CollectionDetails><Collection>CIN</Collection>"
        f"<Year>{year}</Year><ReferenceDate>{reference}</ReferenceDate></CollectionDetails>\n"
        "<Source><SourceLevel>L</SourceLevel><LEA>999</LEA></Source>\n</Header>\n"
        f"<Children>\n{body}\n</Children>\n</Message>\n"
    ).encode()


def child(episodes: str, child_id: str = "C1", sex: str = "<Sex>F</Sex>") -> str:
    return (
        f"<ChildIdentifiers><LAchildID>{child_id}</LAchildID><UPN>A123456789012</UPN>"
        f"<PersonBirthDate>2015-02-03</PersonBirthDate>{sex}</ChildIdentifiers>"
        "<ChildCharacteristics><Ethnicity>WBRI</Ethnicity></ChildCharacteristics>\n"
        f"{episodes}"
    )


def episode(inner: str = "", referral: str = "2023-06-01", nfa: str = "0") -> str:
    return (
        f"<CINdetails><CINreferralDate>{referral}</CINreferralDate>"
        f"<ReferralSource>1A</ReferralSource><PrimaryNeedCode>N1</PrimaryNeedCode>"
        f"<ReferralNFA>{nfa}</ReferralNFA>\n{inner}</CINdetails>\n"
    )


def events_of(data: bytes) -> dict[str, dict[str, object]]:
    """The mapped events by id, each with its data."""
    mapped = map_census(read_cin_census(data, today=TODAY), ruleset=RULESET)
    return {item.event.id: dict(item.event.data) for item in mapped.events}


def line_of(data: bytes, text: bytes) -> int:
    """The 1-based line of the file that holds `text`."""
    return next(n for n, line in enumerate(data.split(b"\n"), 1) if text in line)


def ids_of(data: bytes) -> set[str]:
    return set(events_of(data))


# What is read ----------------------------------------------------------------------------


def test_only_the_child_id_and_the_dates_are_read() -> None:
    read = read_cin_census(census(child(episode())), today=TODAY)
    kept = repr(read)
    assert "C1" in kept
    for personal in ("A123456789012", "2015-02-03", "WBRI", "1A", "N1"):
        assert personal not in kept


def test_the_census_year_is_keyed_on_its_reference_date_not_its_year() -> None:
    read = read_cin_census(census(child(episode()), year="2023"), today=TODAY)
    assert read.reference_date == date(2024, 3, 31)


def test_a_2017_census_with_gender_and_the_conference_on_the_episode_is_read() -> None:
    data = census(
        child(
            episode("<DateOfInitialCPC>2023-06-20</DateOfInitialCPC>"),
            sex="<GenderCurrent>1</GenderCurrent>",
        ),
        reference="2017-03-31",
        year="2017",
    ).replace(b"2023-06", b"2016-06")
    assert ids_of(data) >= {
        "cin-census:C1:referral_received:2016-06-01",
        "cin-census:C1:icpc_held:2016-06-20",
    }


def test_a_2026_census_with_a_pre_proceedings_block_is_read_without_it() -> None:
    data = census(
        child(
            episode(
                "<PreProceedingsandFGDM><PPStartDate>2023-07-01</PPStartDate>"
                "</PreProceedingsandFGDM>"
            )
        ),
        reference="2026-03-31",
    )
    assert ids_of(data) == {
        "cin-census:C1:referral_received:2023-06-01",
        "cin-census:C1:case_reopened:2023-06-01",
    }


def test_a_namespace_prefix_on_the_elements_is_ignored() -> None:
    data = (
        b'<?xml version="1.0"?><c:Message xmlns:c="urn:x"><c:Header><c:CollectionDetails>'
        b"<c:ReferenceDate>2024-03-31</c:ReferenceDate></c:CollectionDetails></c:Header>"
        b"<c:Children><c:Child><c:ChildIdentifiers><c:LAchildID>C9</c:LAchildID>"
        b"</c:ChildIdentifiers><c:CINdetails><c:CINreferralDate>2023-06-01</c:CINreferralDate>"
        b"</c:CINdetails></c:Child></c:Children></c:Message>"
    )
    assert "cin-census:C9:referral_received:2023-06-01" in ids_of(data)


# The mapping -----------------------------------------------------------------------------


def test_a_referral_is_received_on_its_referral_date() -> None:
    assert events_of(census(child(episode())))["cin-census:C1:referral_received:2023-06-01"] == {
        "source": "cin-census"
    }


@pytest.mark.parametrize("code", ["1", "true", "TRUE"])
def test_a_referral_with_no_further_action_is_decided_so_on_its_own_day(code: str) -> None:
    found = events_of(census(child(episode(nfa=code))))
    assert found["cin-census:C1:referral_decision_made:2023-06-01"] == {
        "outcome": "no_further_action",
        "source": "cin-census",
    }


def test_an_assessment_starts_and_is_completed_on_its_authorisation_date() -> None:
    found = ids_of(
        census(
            child(
                episode(
                    "<Assessments><AssessmentActualStartDate>2023-06-02</AssessmentActualStartDate>"
                    "<AssessmentAuthorisationDate>2023-07-20</AssessmentAuthorisationDate>"
                    "<FactorsIdentifiedAtAssessment><AssessmentFactors>1A</AssessmentFactors>"
                    "</FactorsIdentifiedAtAssessment></Assessments>"
                )
            )
        )
    )
    assert {
        "cin-census:C1:assessment_started:2023-06-02",
        "cin-census:C1:assessment_completed:2023-07-20",
    } <= found


def test_a_section_47_with_its_conference_starts_and_holds_it() -> None:
    found = events_of(
        census(
            child(
                episode(
                    "<Section47><S47ActualStartDate>2023-06-05</S47ActualStartDate>"
                    "<InitialCPCtarget>2023-06-26</InitialCPCtarget>"
                    "<DateOfInitialCPC>2023-06-20</DateOfInitialCPC>"
                    "<ICPCnotRequired>false</ICPCnotRequired></Section47>"
                )
            )
        )
    )
    assert "cin-census:C1:section47_started:2023-06-05" in found
    assert "cin-census:C1:icpc_held:2023-06-20" in found
    assert not [i for i in found if "section47_completed" in i]


def test_a_section_47_needing_no_conference_is_completed_so_on_its_start() -> None:
    found = events_of(
        census(
            child(
                episode(
                    "<Section47><S47ActualStartDate>2023-06-05</S47ActualStartDate>"
                    "<ICPCnotRequired>1</ICPCnotRequired></Section47>"
                )
            )
        )
    )
    assert found["cin-census:C1:section47_completed:2023-06-05"] == {
        "outcome": "no_conference",
        "source": "cin-census",
    }


def test_a_protection_plan_keeps_every_review_date() -> None:
    found = ids_of(
        census(
            child(
                episode(
                    "<ChildProtectionPlans><CPPstartDate>2023-06-20</CPPstartDate>"
                    "<CPPendDate>2024-03-01</CPPendDate><InitialCategoryOfAbuse>NEG"
                    "</InitialCategoryOfAbuse><Reviews><CPPreviewDate>2023-09-15</CPPreviewDate>"
                    "<CPPreviewDate>2024-02-10</CPPreviewDate></Reviews></ChildProtectionPlans>"
                )
            )
        )
    )
    assert {
        "cin-census:C1:child_protection_plan_started:2023-06-20",
        "cin-census:C1:cp_review_held:2023-09-15",
        "cin-census:C1:cp_review_held:2024-02-10",
        "cin-census:C1:child_protection_plan_ended:2024-03-01",
    } <= found


def test_cin_plans_are_kept_when_the_ruleset_declares_their_event_types() -> None:
    declared = 'event_types = ["cin_plan_started", "cin_plan_ended"]\n'
    ruleset = load_ruleset(declared + builtin_ruleset_text("england-children"))
    read = read_cin_census(
        census(
            child(
                episode(
                    "<CINPlanDates><CINPlanStartDate>2023-07-20</CINPlanStartDate>"
                    "<CINPlanEndDate>2024-01-10</CINPlanEndDate></CINPlanDates>"
                )
            )
        ),
        today=TODAY,
    )
    ids = {item.event.id for item in map_census(read, ruleset=ruleset).events}
    assert {
        "cin-census:C1:cin_plan_started:2023-07-20",
        "cin-census:C1:cin_plan_ended:2024-01-10",
    } <= ids


def test_cin_plans_are_reported_skipped_when_the_ruleset_has_no_event_type_for_them() -> None:
    read = read_cin_census(
        census(
            child(
                episode(
                    "<CINPlanDates><CINPlanStartDate>2023-07-20</CINPlanStartDate></CINPlanDates>"
                )
            )
        ),
        today=TODAY,
    )
    mapped = map_census(read, ruleset=RULESET)
    assert not [i for i in mapped.events if i.event.type.startswith("cin_plan")]
    assert [s.sheet for s in mapped.skipped] == ["CINPlanDates"]


def test_a_closed_episode_closes_the_case_on_its_closure_date() -> None:
    found = ids_of(census(child(episode("<CINclosureDate>2023-09-01</CINclosureDate>"))))
    assert "cin-census:C1:case_closed:2023-09-01" in found


def test_a_referral_after_a_closure_reopens_the_case() -> None:
    found = ids_of(
        census(
            child(
                episode("<CINclosureDate>2023-09-01</CINclosureDate>")
                + episode(referral="2023-11-06")
            )
        )
    )
    assert {
        "cin-census:C1:case_closed:2023-09-01",
        "cin-census:C1:case_reopened:2023-11-06",
        "cin-census:C1:referral_received:2023-11-06",
    } <= found


def test_an_episode_closed_the_day_the_next_begins_does_not_close_the_case() -> None:
    found = ids_of(
        census(
            child(
                episode("<CINclosureDate>2023-09-01</CINclosureDate>")
                + episode(referral="2023-09-01")
            )
        )
    )
    assert not [i for i in found if "case_closed" in i]


def test_an_episode_still_open_closes_nothing_when_an_overlapping_one_closes() -> None:
    found = ids_of(
        census(
            child(
                episode("<CINclosureDate>2023-12-01</CINclosureDate>")
                + episode(referral="2023-08-01")
            )
        )
    )
    assert not [i for i in found if "case_closed" in i]


def test_an_episode_still_open_next_year_gives_the_same_events_again() -> None:
    open_episode = episode(
        "<ChildProtectionPlans><CPPstartDate>2023-06-20</CPPstartDate><Reviews>"
        "<CPPreviewDate>2023-09-15</CPPreviewDate></Reviews></ChildProtectionPlans>"
    )
    later = episode(
        "<ChildProtectionPlans><CPPstartDate>2023-06-20</CPPstartDate><Reviews>"
        "<CPPreviewDate>2023-09-15</CPPreviewDate><CPPreviewDate>2024-03-12</CPPreviewDate>"
        "</Reviews></ChildProtectionPlans>"
    )
    first = events_of(census(child(open_episode)))
    second = events_of(census(child(later), reference="2025-03-31"))
    assert {i: first[i] for i in first} == {i: second[i] for i in first}
    assert set(second) - set(first) == {"cin-census:C1:cp_review_held:2024-03-12"}


# What is refused, and reported -----------------------------------------------------------


def test_a_date_after_the_reference_date_is_refused_and_the_rest_still_counts() -> None:
    read = read_cin_census(
        census(child(episode("<CINclosureDate>2024-04-02</CINclosureDate>"))), today=TODAY
    )
    (refused,) = read.rejected
    assert (refused.sheet, refused.column, refused.value) == (
        "CINdetails",
        "CINclosureDate",
        "2024-04-02",
    )
    assert "reference date" in refused.detail
    assert "cin-census:C1:referral_received:2023-06-01" in {
        i.event.id for i in map_census(read, ruleset=RULESET).events
    }


def test_an_in_year_census_refuses_dates_after_today() -> None:
    read = read_cin_census(
        census(child(episode(referral="2026-11-21")), reference="2027-03-31"), today=TODAY
    )
    assert [r.detail for r in read.rejected] == ["after today (2026-11-20)"]


def test_a_date_that_is_not_a_date_is_refused_with_its_line() -> None:
    data = census(child(episode(referral="01/06/2023")))
    (refused,) = read_cin_census(data, today=TODAY).rejected
    assert (refused.row, refused.column, refused.detail) == (
        line_of(data, b"01/06/2023"),
        "CINreferralDate",
        "not a date (YYYY-MM-DD)",
    )


def test_an_unknown_yes_no_code_is_refused() -> None:
    read = read_cin_census(census(child(episode(nfa="maybe"))), today=TODAY)
    assert [(r.column, r.value) for r in read.rejected] == [("ReferralNFA", "maybe")]


def test_a_child_without_an_la_child_id_is_left_out_and_counted() -> None:
    read = read_cin_census(census(child(episode(), child_id="")), today=TODAY)
    assert read.episodes == ()
    mapped = map_census(read, ruleset=RULESET)
    report = build_return_report(
        import_id="imp_1", mapped=mapped, counts=OutcomeCounts(), not_evaluable=()
    )
    (details,) = [p for p in report.parts if p.part == "CINdetails"]
    assert (details.rows, details.rows_rejected) == (1, 1)


def test_the_report_counts_each_event_against_the_block_that_evidences_it() -> None:
    mapped = map_census(
        read_cin_census(
            census(
                child(
                    episode(
                        "<Assessments><AssessmentActualStartDate>2023-06-02"
                        "</AssessmentActualStartDate></Assessments>"
                    )
                )
            ),
            today=TODAY,
        ),
        ruleset=RULESET,
    )
    counts = OutcomeCounts()
    counts.add((item, "created") for item in mapped.events)
    report = build_return_report(import_id="imp_1", mapped=mapped, counts=counts, not_evaluable=())
    created = {p.part: p.events_created for p in report.parts}
    assert (created["CINdetails"], created["Assessments"]) == (2, 1)
    assert report.to_json()["parts"][0]["part"] == "CINdetails"


def test_the_rules_a_census_cannot_judge_are_named_with_why() -> None:
    found = {n.rule_id: n.reason for n in rules_not_evaluable(RULESET)}
    assert set(found) == {
        "referral-decision",
        "first-contact",
        "core-group",
        "cp-visit",
        "cla-review",
        "cla-visit",
        "pathway-plan-review",
        "scheduled-task",
    }
    assert "child_visited" in found["cp-visit"]


# Hostile files ---------------------------------------------------------------------------


BILLION_LAUGHS = (
    '<!DOCTYPE Message [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
)


def test_a_billion_laughs_is_refused() -> None:
    data = census(child(episode()), head=BILLION_LAUGHS).replace(
        b"<LAchildID>C1", b"<LAchildID>&lol3;"
    )
    with pytest.raises(ReturnError, match="document type declaration"):
        read_cin_census(data, today=TODAY)


def test_an_external_entity_is_refused() -> None:
    data = census(
        child(episode()), head='<!DOCTYPE Message [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    ).replace(b"<LAchildID>C1", b"<LAchildID>&x;")
    with pytest.raises(ReturnError, match="document type declaration"):
        read_cin_census(data, today=TODAY)


def test_an_undeclared_entity_is_not_well_formed() -> None:
    data = census(child(episode())).replace(b"<LAchildID>C1", b"<LAchildID>&x;")
    with pytest.raises(ReturnError, match="not well-formed"):
        read_cin_census(data, today=TODAY)


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed() -> None:
    data = census(child(episode()))
    with pytest.raises(ReturnError, match="MiB"):
        read_cin_census(data + b" " * (MAX_CENSUS_BYTES - len(data) + 1), today=TODAY)


def test_elements_nested_too_deep_are_refused() -> None:
    deep = "<a>" * 40 + "</a>" * 40
    with pytest.raises(ReturnError, match="nested"):
        read_cin_census(census(child(episode(deep))), today=TODAY)


def test_latin_1_bytes_in_a_file_that_says_utf_8_are_refused_with_their_line() -> None:
    data = census(child(episode())).replace(b"<Ethnicity>WBRI", b"<Ethnicity>\xe9")
    line = line_of(data, b"\xe9")
    with pytest.raises(ReturnError, match=f"line {line},"):
        read_cin_census(data, today=TODAY)


def test_a_file_in_the_encoding_its_declaration_names_is_read() -> None:
    text = census(child(episode())).decode().replace("utf-8", "windows-1252")
    data = text.replace("WBRI", "é").encode("cp1252")
    assert read_cin_census(data, today=TODAY).episodes[0].child_id == "C1"


def test_a_utf_16_file_is_read() -> None:
    text = census(child(episode())).decode().replace("utf-8", "utf-16")
    assert read_cin_census(text.encode("utf-16"), today=TODAY).episodes[0].child_id == "C1"


def test_a_file_that_is_not_a_census_is_refused() -> None:
    with pytest.raises(ReturnError, match="not a CIN census"):
        read_cin_census(b"<Workbook><Sheet/></Workbook>", today=TODAY)


def test_a_census_without_a_reference_date_is_refused() -> None:
    with pytest.raises(ReturnError, match="ReferenceDate"):
        read_cin_census(census(child(episode())).replace(b"ReferenceDate", b"Other"), today=TODAY)
