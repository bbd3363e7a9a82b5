"""POST /v1/imports/cin-census and /v1/imports/ssda903: a return's history becomes deadlines
through the one import path (202, then the job), hostile files are refused before anything is
kept. Read at noon on Friday 20 November 2026.

Expected due days are counted by hand from the statute and the published England and Wales
bank holidays (Christmas Day 25 and Boxing Day 26 December 2023, New Year's Day 1 January
2024; Good Friday 7 and Easter Monday 10 April 2023, the early May bank holiday 1 May 2023)."""

from __future__ import annotations

from typing import Any

from conftest import Tenant

NOON = "2026-11-20T12:00:00Z"
EPISODES = (
    "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST"
)
REVIEWS = "CHILD,DOB,REVIEW,REVIEW_CODE"


def census(episodes: str, reference: str = "2024-03-31") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><Message><Header><CollectionDetails>'
        f"<Collection>CIN</Collection><Year>2024</Year><ReferenceDate>{reference}"
        "</ReferenceDate></CollectionDetails></Header><Children><Child><ChildIdentifiers>"
        "<LAchildID>C1</LAchildID><UPN>A123456789012</UPN></ChildIdentifiers>"
        f"{episodes}</Child></Children></Message>"
    ).encode()


REFERRAL = (
    "<CINdetails><CINreferralDate>2023-12-01</CINreferralDate><ReferralNFA>0</ReferralNFA>"
    "<ChildProtectionPlans><CPPstartDate>2023-12-04</CPPstartDate><Reviews>"
    "<CPPreviewDate>2024-02-26</CPPreviewDate></Reviews></ChildProtectionPlans></CINdetails>"
)


async def post_census(tenant: Tenant, data: bytes) -> dict[str, Any]:
    response = await tenant.writer.post(
        "/v1/imports/cin-census", files={"file": ("census.xml", data, "application/xml")}
    )
    return await tenant.import_report(response)


async def obligations(tenant: Tenant, rule_id: str) -> list[dict[str, Any]]:
    response = await tenant.reader.get(
        "/v1/obligations",
        params={"case_id": "C1", "rule_id": rule_id, "as_of": NOON, "limit": 1000},
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return sorted(items, key=lambda o: o["due_at"])


# CIN census ------------------------------------------------------------------------------


async def test_a_census_referral_is_due_its_assessment_45_working_days_later(
    tenant: Tenant,
) -> None:
    await post_census(tenant, census(REFERRAL))
    (assessment,) = await obligations(tenant, "assessment-completion")
    # Friday 1 December 2023 + 45 working days, past Christmas and New Year: 7 February 2024.
    assert assessment["due_at"] == "2024-02-07T23:59:59.999999Z"


async def test_a_census_review_meets_the_plans_first_review(tenant: Tenant) -> None:
    await post_census(tenant, census(REFERRAL))
    first, second = (await obligations(tenant, "cp-review"))[:2]
    # Plan from 4 December 2023: first review within 3 months (4 March 2024), held 26 February.
    assert (first["due_at"], first["status"]) == ("2024-03-04T23:59:59.999999Z", "met")
    # Then at most 6-monthly from that review: 26 August 2024 (BST, so 22:59 UTC).
    assert second["due_at"] == "2024-08-26T22:59:59.999999Z"


async def test_the_census_report_counts_each_block_and_names_what_it_cannot_judge(
    tenant: Tenant,
) -> None:
    report = await post_census(tenant, census(REFERRAL))
    assert report["source"] == "cin-census"
    assert report["reference_date"] == "2024-03-31"
    parts = {p["part"]: p for p in report["parts"]}
    assert parts["Reviews"]["events_created"] == 1
    assert "cp-visit" in {n["rule_id"] for n in report["rules_not_evaluable"]}
    assert "cp-visit" not in {o["rule_id"] for o in await obligations(tenant, "cp-visit")}


async def test_next_years_census_repeating_an_open_episode_adds_only_what_is_new(
    tenant: Tenant,
) -> None:
    await post_census(tenant, census(REFERRAL))
    later = REFERRAL.replace(
        "<CPPreviewDate>2024-02-26</CPPreviewDate>",
        "<CPPreviewDate>2024-02-26</CPPreviewDate><CPPreviewDate>2024-08-20</CPPreviewDate>",
    )
    report = await post_census(tenant, census(later, reference="2025-03-31"))
    created = sum(p["events_created"] for p in report["parts"])
    duplicates = sum(p["events_duplicate"] for p in report["parts"])
    assert (created, duplicates) == (1, 4)


async def test_a_census_with_entities_is_refused_and_nothing_is_kept(tenant: Tenant) -> None:
    data = census(REFERRAL).replace(
        b"<Message>", b'<!DOCTYPE Message [<!ENTITY x SYSTEM "file:///etc/passwd">]><Message>'
    )
    response = await tenant.writer.post(
        "/v1/imports/cin-census", content=data, headers={"content-type": "application/xml"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "document type declaration" in response.json()["detail"]
    assert (await tenant.reader.get("/v1/imports")).json()["items"] == []


async def test_a_census_sent_as_another_media_type_is_refused(tenant: Tenant) -> None:
    response = await tenant.writer.post(
        "/v1/imports/cin-census", content=b"x", headers={"content-type": "image/png"}
    )
    assert response.status_code == 415


# SSDA903 ---------------------------------------------------------------------------------


def returns(*rows: str, header: str = EPISODES) -> bytes:
    return "\r\n".join((header, *rows, "")).encode()


async def post_returns(tenant: Tenant, *files: tuple[str, bytes]) -> dict[str, Any]:
    response = await tenant.writer.post(
        "/v1/imports/ssda903",
        files=[("file", (name, data, "text/csv")) for name, data in files],
    )
    return await tenant.import_report(response)


async def test_several_return_files_in_one_request_make_the_looked_after_review_chain(
    tenant: Tenant,
) -> None:
    report = await post_returns(
        tenant,
        ("episodes_2024.csv", b"\xef\xbb\xbf" + returns("C1,03/04/2023,S,C2,N1,U1,PR1,,,,,")),
        ("reviews_2024.csv", returns("C1,01/01/2015,28/04/2023,PN1", header=REVIEWS)),
    )
    assert [(p["part"], p["kind"]) for p in report["parts"]] == [
        ("episodes_2024.csv", "episodes"),
        ("reviews_2024.csv", "reviews"),
    ]
    first, second = (await obligations(tenant, "cla-review"))[:2]
    # Monday 3 April 2023 + 20 working days, past Easter and 1 May: Thursday 4 May 2023 (BST).
    assert (first["due_at"], first["status"]) == ("2023-05-04T22:59:59.999999Z", "met")
    # Then within 3 months of that review (regulation 33): 28 July 2023.
    assert second["due_at"] == "2023-07-28T22:59:59.999999Z"


async def test_a_returns_incoherent_rows_are_reported_not_believed(tenant: Tenant) -> None:
    report = await post_returns(
        tenant,
        ("episodes_2024.csv", returns("C1,03/04/2023,S,C2,N1,U1,PR1,,,,,")),
        (
            "reviews_2024.csv",
            returns("C1,01/01/2015,02/04/2023,PN1", "C1,01/01/2015,01/05/2031,PN1", header=REVIEWS),
        ),
    )
    assert [(r["part"], r["row"]) for r in report["rejected"]] == [
        ("reviews_2024.csv", 2),
        ("reviews_2024.csv", 3),
    ]
    events = await tenant.reader.get("/v1/events", params={"case_id": "C1"})
    assert "cla_review_held" not in {e["type"] for e in events.json()["items"]}


async def test_a_later_return_replacing_an_episode_is_reported(tenant: Tenant) -> None:
    report = await post_returns(
        tenant,
        ("episodes_2023.csv", returns("C1,01/06/2022,S,C2,N1,U1,PR1,,,,,")),
        ("episodes_2024.csv", returns("C1,03/06/2022,S,C2,N1,U1,PR1,,,,,")),
    )
    assert [(r["part"], r["row"]) for r in report["revised"]] == [("episodes_2023.csv", 2)]


async def test_files_caseclock_does_not_read_alone_are_refused(tenant: Tenant) -> None:
    response = await tenant.writer.post(
        "/v1/imports/ssda903",
        files=[("file", ("header_2024.csv", b"CHILD,SEX,DOB,ETHNIC,UPN\n", "text/csv"))],
    )
    assert response.status_code == 422
    assert "no file is one caseclock reads" in response.json()["detail"]


async def test_a_return_file_with_no_year_takes_the_year_given(tenant: Tenant) -> None:
    response = await tenant.writer.post(
        "/v1/imports/ssda903?year=2024",
        files=[
            ("file", ("episodes.csv", returns("C1,03/04/2023,S,C2,N1,U1,PR1,,,,,"), "text/csv"))
        ],
    )
    report = await tenant.import_report(response)
    assert report["reference_date"] == "2024-03-31"


async def test_return_reports_are_listed_with_annex_a_ones(tenant: Tenant) -> None:
    await post_census(tenant, census(REFERRAL))
    listed = await tenant.reader.get("/v1/imports")
    assert listed.status_code == 200, listed.text
    assert [item["source"] for item in listed.json()["items"]] == ["cin-census"]
