"""POST /v1/imports/annex-a and the kept reports, over the real app and database."""

from __future__ import annotations

import io
import os
import re
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import httpx
import pytest
from conftest import FixedClock, Tenant, make_tenant
from fastapi import FastAPI
from imports.workbooks import (
    SheetSpec,
    annex_a_sheet,
    build_workbook,
    rewrite_part,
    with_member,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
URL = "/v1/imports/annex-a"
EXTRACTED = {"extracted_on": "2026-11-20"}
SHEET_XML = "xl/worksheets/sheet1.xml"
MIB = 1024 * 1024
STRATEGY = "Strategy discussion initiating Section 47 Enquiry Start Date"


def referral(child: str, day: object = date(2026, 8, 14), **cells: object) -> dict[str, object]:
    return {"Child Unique ID": child, "Date of referral": day, **cells}


def protection(child: str, **cells: object) -> dict[str, object]:
    return {"Child Unique ID": child, "Child Protection Plan Start Date": date(2026, 2, 2), **cells}


def a_workbook() -> bytes:
    return build_workbook(annex_a_sheet(3, [referral("C1", **{"Allocated Worker": "W1"})]))


async def post_raw(
    client: httpx.AsyncClient, data: bytes, params: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        URL,
        params=EXTRACTED if params is None else params,
        content=data,
        headers={"content-type": XLSX},
    )


async def post_form(client: httpx.AsyncClient, data: bytes) -> httpx.Response:
    return await client.post(URL, params=EXTRACTED, files={"file": ("annex-a.xlsx", data, XLSX)})


async def imported(tenant: Tenant, data: bytes) -> dict[str, Any]:
    """The report of an import posted and run to its end."""
    return await tenant.import_report(await post_raw(tenant.writer, data))


async def stored_event_ids(tenant: Tenant) -> set[str]:
    response = await tenant.reader.get("/v1/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


async def nothing_stored(tenant: Tenant) -> bool:
    events = (await tenant.reader.get("/v1/events")).json()["items"]
    imports = (await tenant.reader.get("/v1/imports")).json()["items"]
    obligations = (await tenant.reader.get("/v1/obligations")).json()["items"]
    return events == imports == obligations == []


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["detail"]
    return body


# Uploading


async def test_a_workbook_posted_as_the_multipart_field_file_is_imported(tenant: Tenant) -> None:
    report = await tenant.import_report(await post_form(tenant.writer, a_workbook()))

    assert report["lists"][0]["list"] == 3


async def test_a_workbook_posted_as_the_raw_body_is_imported(tenant: Tenant) -> None:
    report = await imported(tenant, a_workbook())

    assert report["lists"][0]["events_created"] >= 1


async def test_the_report_has_exactly_the_contract_shape(tenant: Tenant) -> None:
    report = await imported(
        tenant,
        build_workbook(
            annex_a_sheet(3, [referral("C1"), referral("C2", "31/02/2026")]),
            SheetSpec("Notes", ["Anything"], [["x"]]),
        ),
    )

    assert set(report) == {
        "id",
        "extracted_on",
        "lists",
        "skipped_sheets",
        "missing_lists",
        "missing_columns",
        "rejected",
        "rules_not_evaluable",
    }
    assert report["extracted_on"] == "2026-11-20"
    assert report["lists"] == [
        {
            "list": 3,
            "sheet": "List_3",
            "rows": 2,
            "events_created": 1,
            "events_duplicate": 0,
            "rows_rejected": 0,
        }
    ]
    assert report["skipped_sheets"] == [{"sheet": "Notes", "reason": "no Annex A list recognised"}]
    assert set(report["missing_lists"][0]) == {"list", "title", "rules"}
    assert report["missing_columns"] == []
    assert set(report["rejected"][0]) == {"sheet", "row", "column", "value", "detail", "rules"}
    assert set(report["rules_not_evaluable"][0]) == {"rule_id", "reason"}


async def test_extracted_on_defaults_to_today(tenant: Tenant) -> None:
    report = await tenant.import_report(await post_raw(tenant.writer, a_workbook(), params={}))

    assert report["extracted_on"] == "2026-11-20"


async def test_an_extraction_date_after_today_is_refused(tenant: Tenant) -> None:
    response = await post_raw(tenant.writer, a_workbook(), params={"extracted_on": "2026-11-21"})

    body = assert_problem(response, 422)
    assert body["errors"][0]["parameter"] == "extracted_on"
    assert await nothing_stored(tenant)


@pytest.mark.parametrize(
    "value", ["20/11/2026", "2026-W47-5", "2026-11-20T00:00:00Z", "1899-12-31"]
)
async def test_an_extraction_date_that_is_not_a_plain_date_from_1900_is_refused(
    tenant: Tenant, value: str
) -> None:
    response = await post_raw(tenant.writer, a_workbook(), params={"extracted_on": value})

    assert assert_problem(response, 422)["errors"][0]["parameter"] == "extracted_on"


async def test_a_body_of_another_type_is_refused_with_415(tenant: Tenant) -> None:
    response = await tenant.writer.post(
        URL, params=EXTRACTED, content=a_workbook(), headers={"content-type": "text/csv"}
    )

    assert_problem(response, 415)


async def test_a_form_without_the_file_field_is_refused(tenant: Tenant) -> None:
    response = await tenant.writer.post(
        URL, params=EXTRACTED, files={"other": ("a.xlsx", a_workbook(), XLSX)}
    )

    assert assert_problem(response, 422)["errors"] == [
        {"pointer": "/file", "detail": "is required: the .xlsx workbook"}
    ]


async def test_a_form_of_too_many_fields_is_refused_naming_the_limit(tenant: Tenant) -> None:
    fields = {f"field{n}": "x" for n in range(11)}

    response = await tenant.writer.post(
        URL, params=EXTRACTED, data=fields, files={"file": ("a.xlsx", a_workbook(), XLSX)}
    )

    assert "Maximum number of fields is 10" in assert_problem(response, 422)["detail"]


async def test_importing_needs_the_events_write_scope(tenant: Tenant) -> None:
    assert_problem(await post_raw(tenant.reader, a_workbook()), 403)
    assert_problem(await post_raw(tenant.anonymous, a_workbook()), 401)


# Idempotence and history


async def test_re_importing_the_same_file_creates_nothing_new(tenant: Tenant) -> None:
    data = build_workbook(
        annex_a_sheet(3, [referral("C1", **{"Allocated Worker": "W1"})]),
        annex_a_sheet(
            7, [protection("C2", **{"Date of the Last Statutory Visit": date(2026, 11, 2)})]
        ),
    )
    await imported(tenant, data)
    before = await stored_event_ids(tenant)

    again = await imported(tenant, data)

    assert await stored_event_ids(tenant) == before
    assert [item["events_created"] for item in again["lists"]] == [0, 0]
    assert all(item["events_duplicate"] > 0 for item in again["lists"])


async def test_a_later_file_with_one_more_visit_adds_exactly_that_event(tenant: Tenant) -> None:
    first = annex_a_sheet(
        7, [protection("C1", **{"Date of the Last Statutory Visit": date(2026, 11, 2)})]
    )
    later = annex_a_sheet(
        7, [protection("C1", **{"Date of the Last Statutory Visit": date(2026, 11, 13)})]
    )
    await imported(tenant, build_workbook(first))
    before = await stored_event_ids(tenant)

    report = await imported(tenant, build_workbook(later))

    assert await stored_event_ids(tenant) - before == {"annex-a:C1:child_visited:2026-11-13"}
    assert report["lists"][0]["events_created"] == 1


async def test_imported_events_carry_deterministic_ids_and_only_their_codes(
    tenant: Tenant,
) -> None:
    cells = {
        STRATEGY: date(2026, 10, 26),
        "Was an Initial Child Protection Conference deemed unnecessary?": "Yes",
    }
    await imported(tenant, build_workbook(annex_a_sheet(5, [{"Child Unique ID": "C9", **cells}])))

    events = (await tenant.reader.get("/v1/events", params={"case_id": "C9"})).json()["items"]

    assert {(e["id"], e["type"], e["occurred_at"]) for e in events} == {
        ("annex-a:C9:section47_started:2026-10-26", "section47_started", "2026-10-26T00:00:00Z"),
        (
            "annex-a:C9:section47_completed:2026-10-26",
            "section47_completed",
            "2026-10-26T00:00:00Z",
        ),
    }
    assert [e["data"] for e in events if e["type"] == "section47_completed"] == [
        {"outcome": "no_conference", "source": "annex-a"}
    ]


async def test_the_allocation_becomes_the_cases_worker_and_team(tenant: Tenant) -> None:
    await imported(
        tenant,
        build_workbook(
            annex_a_sheet(
                3, [referral("C1", **{"Allocated Worker": "W1", "Allocated Team": "North"})]
            )
        ),
    )

    case = (await tenant.reader.get("/v1/cases/C1")).json()

    assert (case["worker_id"], case["team_id"]) == ("W1", "North")
    assert {o["worker_id"] for o in case["obligations"]} == {"W1"}


async def test_a_later_file_that_moves_a_child_adds_one_allocation_event(tenant: Tenant) -> None:
    earlier = build_workbook(annex_a_sheet(3, [referral("C1", **{"Allocated Worker": "W1"})]))
    later = build_workbook(annex_a_sheet(3, [referral("C1", **{"Allocated Worker": "W2"})]))
    await tenant.import_report(
        await post_raw(tenant.writer, earlier, params={"extracted_on": "2026-11-13"})
    )
    before = await stored_event_ids(tenant)

    await imported(tenant, later)

    assert await stored_event_ids(tenant) - before == {"annex-a:C1:case_allocated:2026-11-20"}
    assert (await tenant.reader.get("/v1/cases/C1")).json()["worker_id"] == "W2"


# Rows that cannot be read


async def test_bad_rows_are_reported_by_sheet_row_and_column_while_the_rest_import(
    tenant: Tenant,
) -> None:
    rows = [
        referral("C1"),
        referral("C2", "31/02/2026"),
        referral("C3", date(2026, 11, 21)),
        referral(None),  # type: ignore[arg-type]
        referral("C5", "14/08/2026"),
    ]

    report = await imported(tenant, build_workbook(annex_a_sheet(3, rows)))

    assert [
        (r["sheet"], r["row"], r["column"], r["value"], r["detail"]) for r in report["rejected"]
    ] == [
        ("List_3", 4, "Date of referral", "31/02/2026", "not a valid calendar date"),
        ("List_3", 5, "Date of referral", "2026-11-21", "date after the extraction date"),
        ("List_3", 6, "Child Unique ID", "", "missing Child Unique ID"),
    ]
    assert report["lists"][0]["rows_rejected"] == 1  # the row with no Child Unique ID
    assert await stored_event_ids(tenant) == {
        "annex-a:C1:referral_received:2026-08-14",
        "annex-a:C5:referral_received:2026-08-14",
    }


# Files refused whole: a clear problem, nothing stored


def zip_bomb() -> bytes:
    return with_member(a_workbook(), "xl/media/zeros.bin", bytes(16 * MIB))


def entity_payload() -> bytes:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    )
    return rewrite_part(
        a_workbook(), SHEET_XML, lambda xml: laughs + xml.replace(b"<t>C1</t>", b"<t>&lol1;</t>")
    )


REFUSED = {
    "a csv renamed xlsx": (
        lambda: b"Child Unique ID,Date of referral\r\nC1,14/08/2026\r\n",
        "not a zip archive",
    ),
    "a corrupt zip": (lambda: a_workbook()[:2000], "corrupt zip archive"),
    "a zip bomb": (zip_bomb, "compressed"),
    "an XML entity payload": (entity_payload, "DOCTYPE or ENTITY"),
    "a workbook with no known list": (
        lambda: build_workbook(SheetSpec("Sheet1", ["Name", "Date of Birth"], [["A", "B"]])),
        "no Annex A list with tracked deadlines",
    ),
}


@pytest.mark.parametrize("kind", list(REFUSED))
async def test_a_file_that_cannot_be_imported_is_a_422_problem_and_stores_nothing(
    tenant: Tenant, kind: str
) -> None:
    make, expected = REFUSED[kind]

    response = await post_form(tenant.writer, make())

    body = assert_problem(response, 422)
    assert expected in body["detail"]
    assert await nothing_stored(tenant)


async def test_the_422_problem_names_the_headings_expected(tenant: Tenant) -> None:
    make, _ = REFUSED["a workbook with no known list"]

    body = assert_problem(await post_raw(tenant.writer, make()), 422)

    assert {"list": 3, "headings": ["Child Unique ID", "Date of referral", "Referral NFA?"]} in (
        body["expected_headings"]
    )
    assert "Referral NFA?" in body["detail"]


async def test_a_21_mib_body_is_a_413_problem_and_stores_nothing(tenant: Tenant) -> None:
    response = await post_raw(tenant.writer, b"PK" + bytes(21 * MIB))

    assert_problem(response, 413)
    assert await nothing_stored(tenant)


async def test_a_21_mib_multipart_upload_is_a_413_problem(tenant: Tenant) -> None:
    assert_problem(await post_form(tenant.writer, b"PK" + bytes(21 * MIB)), 413)


async def test_a_workbook_over_the_5_mib_event_limit_but_under_20_mib_is_accepted(
    tenant: Tenant,
) -> None:
    # Incompressible padding: a real file this large holds thousands of rows.
    data = with_member(a_workbook(), "docProps/padding.bin", os.urandom(7 * MIB))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.getinfo("docProps/padding.bin").compress_size > 6 * MIB

    report = await imported(tenant, data)

    assert report["lists"][0]["events_created"] >= 1


# Following an import


async def test_an_upload_is_accepted_with_its_import_to_poll(tenant: Tenant) -> None:
    response = await post_raw(tenant.writer, a_workbook())

    assert response.status_code == 202, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/imports/{body['id']}"
    assert body["state"] == "queued"
    assert body["report"] is None
    assert body["progress"] == {
        "rows_done": 0,
        "rows_total": None,
        "cases_done": 0,
        "cases_total": None,
    }


async def test_a_finished_imports_report_fields_are_also_at_the_top_level(tenant: Tenant) -> None:
    response = await post_raw(tenant.writer, build_workbook(annex_a_sheet(3, [referral("C1")])))
    await tenant.run_jobs()

    body = (await tenant.reader.get(response.headers["location"])).json()

    assert body["lists"] == body["report"]["lists"]
    assert body["lists"][0]["events_created"] == 1
    assert body["rules_not_evaluable"] == body["report"]["rules_not_evaluable"]


async def test_nothing_is_imported_until_the_job_runs(tenant: Tenant) -> None:
    await post_raw(tenant.writer, a_workbook())

    assert await stored_event_ids(tenant) == set()


async def test_a_finished_import_shows_done_every_row_and_case_and_its_report(
    tenant: Tenant,
) -> None:
    response = await post_raw(
        tenant.writer, build_workbook(annex_a_sheet(3, [referral("C1"), referral("C2")]))
    )
    await tenant.run_jobs()

    body = (await tenant.reader.get(response.headers["location"])).json()

    assert body["state"] == "done"
    assert body["progress"] == {"rows_done": 2, "rows_total": 2, "cases_done": 2, "cases_total": 2}
    assert body["report"]["lists"][0]["events_created"] == 2
    assert body["started_at"] is not None
    assert body["finished_at"] is not None
    assert body["problem"] is None


async def test_the_kept_report_is_the_one_the_finished_import_shows(tenant: Tenant) -> None:
    report = await imported(tenant, a_workbook())

    response = await tenant.reader.get("/v1/imports")

    assert response.json()["items"] == [report]


async def test_kept_reports_are_listed_newest_first_a_page_at_a_time(
    tenant: Tenant, clock: FixedClock
) -> None:
    first = await imported(tenant, a_workbook())
    clock.now = clock.now.replace(hour=13)
    second = await imported(tenant, a_workbook())

    page = (await tenant.reader.get("/v1/imports", params={"limit": 1})).json()
    rest = (
        await tenant.reader.get("/v1/imports", params={"limit": 1, "cursor": page["next_cursor"]})
    ).json()

    assert [item["id"] for item in page["items"]] == [second["id"]]
    assert rest == {"items": [first], "next_cursor": None}


async def test_an_unknown_import_is_a_404_problem(tenant: Tenant) -> None:
    assert_problem(await tenant.reader.get("/v1/imports/imp_nothing"), 404)


async def test_another_organisation_sees_none_of_an_import(app: FastAPI, tenant: Tenant) -> None:
    report = await imported(tenant, a_workbook())
    other = await make_tenant(app)

    assert_problem(await other.reader.get(f"/v1/imports/{report['id']}"), 404)
    assert (await other.reader.get("/v1/imports")).json()["items"] == []
    assert (await other.reader.get("/v1/events")).json()["items"] == []


# The dashboard's upload page


def browser(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://caseclock.test"
    )


def key_of(client: httpx.AsyncClient) -> str:
    return client.headers["authorization"].removeprefix("Bearer ")


@asynccontextmanager
async def signed_in(app: FastAPI, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser with a dashboard session opened with `key`."""
    async with browser(app) as client:
        response = await client.post(
            "/dashboard/sign-in",
            content=f"credential={key}",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 303, response.text
        yield client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match[1]


async def upload(client: httpx.AsyncClient, data: bytes, **fields: str) -> httpx.Response:
    page = await client.get("/dashboard/imports")
    form = {"csrf": csrf_of(page.text), "extracted_on": "2026-11-20", **fields}
    return await client.post(
        "/dashboard/imports", data=form, files={"file": ("annex-a.xlsx", data, XLSX)}
    )


async def test_the_imports_page_sends_a_visitor_without_a_session_to_sign_in(app: FastAPI) -> None:
    async with browser(app) as client:
        response = await client.get("/dashboard/imports")

    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/sign-in")


async def test_an_admin_sees_an_upload_form_that_posts_the_file_not_a_key(
    app: FastAPI, tenant: Tenant
) -> None:
    async with signed_in(app, key_of(tenant.admin)) as client:
        html = (await client.get("/dashboard/imports")).text

    assert '<form method="post" action="/dashboard/imports" enctype="multipart/form-data"' in html
    assert 'type="file" id="file" name="file"' in html
    assert key_of(tenant.admin) not in html


async def test_an_admins_upload_shows_the_report_with_lists_rejections_and_rules(
    app: FastAPI, tenant: Tenant
) -> None:
    data = build_workbook(annex_a_sheet(3, [referral("C1"), referral("C2", "31/02/2026")]))
    async with signed_in(app, key_of(tenant.admin)) as client:
        response = await upload(client, data)
        assert response.status_code == 303, response.text
        await tenant.run_jobs()
        html = (await client.get(response.headers["location"])).text

    lists = html[html.index('id="lists"') : html.index("</table>", html.index('id="lists"'))]
    assert re.search(
        r"List 3</th>\s*<td>List_3</td>\s*<td class=\"num\">2</td>\s*<td class=\"num\">1</td>",
        lists,
    )
    rejected = html[html.index('id="rejected"') :]
    for cell in ("List_3", ">4<", "Date of referral", "31/02/2026", "not a valid calendar date"):
        assert cell in rejected
    assert "referral-decision" in html
    assert await stored_event_ids(tenant) == {"annex-a:C1:referral_received:2026-08-14"}


async def test_an_upload_shows_its_progress_until_the_import_is_done(
    app: FastAPI, tenant: Tenant
) -> None:
    async with signed_in(app, key_of(tenant.admin)) as client:
        response = await upload(client, a_workbook())
        page = (await client.get(response.headers["location"])).text
        progress = await client.get(response.headers["location"] + "/progress")

    assert 'id="import-progress"' in page
    assert "/dashboard/static/import_progress.js" in page
    assert progress.json() == {
        "state": "queued",
        "rows_done": 0,
        "rows_total": None,
        "cases_done": 0,
        "cases_total": None,
    }


async def test_the_report_page_lists_the_upload_among_recent_imports(
    app: FastAPI, tenant: Tenant
) -> None:
    report = await imported(tenant, a_workbook())
    async with signed_in(app, key_of(tenant.reader)) as client:
        html = (await client.get("/dashboard/imports")).text

    assert f'href="/dashboard/imports/{report["id"]}"' in html


async def test_a_reader_cannot_upload_and_is_told_an_admin_key_is_needed(
    app: FastAPI, tenant: Tenant
) -> None:
    async with signed_in(app, key_of(tenant.reader)) as client:
        page = (await client.get("/dashboard/imports")).text
        response = await client.post(
            "/dashboard/imports",
            data={"csrf": csrf_of(page)},
            files={"file": ("annex-a.xlsx", a_workbook(), XLSX)},
        )

    assert 'id="needs-admin"' in page
    assert 'enctype="multipart/form-data"' not in page
    assert response.status_code == 403
    assert "admin scope" in response.text
    assert await nothing_stored(tenant)


async def test_an_upload_without_the_forms_csrf_token_is_refused(
    app: FastAPI, tenant: Tenant
) -> None:
    async with signed_in(app, key_of(tenant.admin)) as client:
        response = await client.post(
            "/dashboard/imports",
            data={"csrf": "forged"},
            files={"file": ("annex-a.xlsx", a_workbook(), XLSX)},
        )

    assert response.status_code == 403
    assert await nothing_stored(tenant)


async def test_an_unreadable_upload_shows_why_on_the_page_and_stores_nothing(
    app: FastAPI, tenant: Tenant
) -> None:
    async with signed_in(app, key_of(tenant.admin)) as client:
        response = await upload(client, b"Child Unique ID,Date of referral\r\nC1,14/08/2026\r\n")

    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert "not a zip archive" in response.text
    assert await nothing_stored(tenant)


async def test_an_upload_dated_in_the_future_is_refused_on_the_page(
    app: FastAPI, tenant: Tenant
) -> None:
    async with signed_in(app, key_of(tenant.admin)) as client:
        response = await upload(client, a_workbook(), extracted_on="2026-12-01")

    assert response.status_code == 422
    assert "after today" in response.text
    assert await nothing_stored(tenant)
