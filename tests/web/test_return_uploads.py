"""The upload page takes the CIN census and the SSDA903 return's files as it takes Annex A
workbooks: a form per source, the import queued as a background job, its page with the
progress bar, then its report. Over the real app, no browser."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from conftest import Tenant
from fastapi import FastAPI

CENSUS = (
    b'<?xml version="1.0" encoding="utf-8"?><Message><Header><CollectionDetails>'
    b"<Collection>CIN</Collection><Year>2024</Year><ReferenceDate>2024-03-31</ReferenceDate>"
    b"</CollectionDetails></Header><Children><Child><ChildIdentifiers><LAchildID>C1</LAchildID>"
    b"</ChildIdentifiers><CINdetails><CINreferralDate>2023-12-01</CINreferralDate>"
    b"<ReferralNFA>0</ReferralNFA></CINdetails></Child></Children></Message>"
)
EPISODES = (
    b"CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST"
    b"\r\nC1,03/04/2023,S,C2,N1,U1,PR1,,,,,\r\n"
)
REVIEWS = b"CHILD,DOB,REVIEW,REVIEW_CODE\r\nC1,01/01/2015,28/04/2023,PN1\r\n"


def key_of(client: httpx.AsyncClient) -> str:
    return client.headers["authorization"].removeprefix("Bearer ")


@asynccontextmanager
async def signed_in(app: FastAPI, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser with a dashboard session opened with `key`."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://caseclock.test"
    ) as client:
        response = await client.post(
            "/dashboard/sign-in",
            content=f"credential={key}",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 303, response.text
        yield client


async def post_form(
    client: httpx.AsyncClient, path: str, files: list[tuple[str, bytes, str]], **fields: str
) -> httpx.Response:
    page = (await client.get("/dashboard/imports")).text
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return await client.post(
        path,
        data={"csrf": match[1], **fields},
        files=[("file", file) for file in files],
    )


async def imported_page(tenant: Tenant, client: httpx.AsyncClient, response: httpx.Response) -> str:
    """The import's page once its job has run."""
    assert response.status_code == 303, response.text
    await tenant.run_jobs()
    return (await client.get(response.headers["location"])).text


async def test_an_admin_sees_a_census_form_and_a_return_form_taking_several_files(
    app: FastAPI, tenant: Tenant
) -> None:
    async with signed_in(app, key_of(tenant.admin)) as client:
        html = (await client.get("/dashboard/imports")).text
    assert '<form method="post" action="/dashboard/imports/cin-census"' in html
    assert '<form method="post" action="/dashboard/imports/ssda903"' in html
    assert 'id="returns-file" name="file" required multiple' in html


async def test_a_reader_sees_no_return_forms(app: FastAPI, tenant: Tenant) -> None:
    async with signed_in(app, key_of(tenant.reader)) as client:
        html = (await client.get("/dashboard/imports")).text
    assert "/dashboard/imports/cin-census" not in html
    assert "/dashboard/imports/ssda903" not in html


async def test_an_uploaded_census_is_queued_shows_its_progress_then_its_report(
    app: FastAPI, tenant: Tenant
) -> None:
    async with signed_in(app, key_of(tenant.admin)) as client:
        response = await post_form(
            client, "/dashboard/imports/cin-census", [("census.xml", CENSUS, "application/xml")]
        )
        queued = (await client.get(response.headers["location"])).text
        report = await imported_page(tenant, client, response)
    assert "<h1>CIN census import</h1>" in queued
    assert 'id="import-progress"' in queued
    assert "<h1>CIN census import report</h1>" in report
    parts = report[
        report.index('id="parts"') : report.index("</table>", report.index('id="parts"'))
    ]
    assert re.search(r"CINdetails</th>\s*<td>census</td>\s*<td>2024-03-31</td>", parts)
    assert "cp-visit" in report  # a rule the census cannot evidence


async def test_several_return_files_in_one_upload_make_one_import(
    app: FastAPI, tenant: Tenant
) -> None:
    async with signed_in(app, key_of(tenant.admin)) as client:
        response = await post_form(
            client,
            "/dashboard/imports/ssda903",
            [
                ("episodes_2024.csv", EPISODES, "text/csv"),
                ("reviews_2024.csv", REVIEWS, "text/csv"),
            ],
        )
        report = await imported_page(tenant, client, response)
    assert "<h1>SSDA903 return import report</h1>" in report
    assert ">episodes_2024.csv</th>" in report
    assert ">reviews_2024.csv</th>" in report
    events = (await tenant.reader.get("/v1/events", params={"case_id": "C1"})).json()["items"]
    assert {"became_looked_after", "cla_review_held"} <= {e["type"] for e in events}


async def test_return_files_without_a_year_take_the_year_given_in_the_form(
    app: FastAPI, tenant: Tenant
) -> None:
    async with signed_in(app, key_of(tenant.admin)) as client:
        response = await post_form(
            client,
            "/dashboard/imports/ssda903",
            [("episodes.csv", EPISODES, "text/csv")],
            year="2024",
        )
        report = await imported_page(tenant, client, response)
    assert 'Year to <time datetime="2024-03-31">' in report


async def test_a_census_with_entities_is_refused_on_the_page_and_nothing_is_kept(
    app: FastAPI, tenant: Tenant
) -> None:
    hostile = CENSUS.replace(
        b"<Message>", b'<!DOCTYPE Message [<!ENTITY x SYSTEM "file:///etc/passwd">]><Message>'
    )
    async with signed_in(app, key_of(tenant.admin)) as client:
        response = await post_form(
            client, "/dashboard/imports/cin-census", [("census.xml", hostile, "application/xml")]
        )
    assert response.status_code == 422
    assert 'role="alert"' in response.text
    assert "document type declaration" in response.text
    assert (await tenant.reader.get("/v1/imports")).json()["items"] == []


async def test_a_return_upload_without_the_forms_csrf_token_is_refused(
    app: FastAPI, tenant: Tenant
) -> None:
    async with signed_in(app, key_of(tenant.admin)) as client:
        response = await client.post(
            "/dashboard/imports/ssda903",
            data={"csrf": "forged"},
            files=[("file", ("episodes_2024.csv", EPISODES, "text/csv"))],
        )
    assert response.status_code == 403
    assert (await tenant.reader.get("/v1/imports")).json()["items"] == []


async def test_the_recent_imports_name_each_source(app: FastAPI, tenant: Tenant) -> None:
    async with signed_in(app, key_of(tenant.admin)) as client:
        response = await post_form(
            client, "/dashboard/imports/cin-census", [("census.xml", CENSUS, "application/xml")]
        )
        await imported_page(tenant, client, response)
        html = (await client.get("/dashboard/imports")).text
    recent = html[html.index('id="imports"') :]
    assert "<td>CIN census</td>" in recent
    assert "<td>2024-03-31</td>" in recent
