"""Worker and team pages: every worker and team on the dashboard links to a page with their
caseload, what is overdue and due soon, and their timeliness (docs/dashboard.md)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html import unescape
from typing import Any

import httpx
import pytest
from conftest import Tenant
from fastapi import FastAPI
from test_pages import browser, csv_rows, embed_token, event, read_key, sign_in, tiles

ODD_WORKER = "W/1 x"


async def caseload(tenant: Tenant) -> None:
    """W-1 works in two teams: C-1 in T-1 (referred 2 Nov, long overdue) and C-4 in T-2
    (referred the day before). W-2 has C-2 in T-2; a worker with an awkward id has C-5."""
    referrals = [
        ("C-1", "2026-11-02T10:00:00Z", "W-1", "T-1"),
        ("C-4", "2026-11-19T10:00:00Z", "W-1", "T-2"),
        ("C-2", "2026-11-19T11:00:00Z", "W-2", "T-2"),
        ("C-5", "2026-11-10T10:00:00Z", ODD_WORKER, "T-1"),
    ]
    events = [
        event(f"{case}-ref", "referral_received", case, at, worker_id=worker, team_id=team)
        for case, at, worker, team in referrals
    ]
    response = await tenant.writer.post("/v1/events/batch", json={"events": events})
    assert response.status_code == 200, response.text


@pytest.fixture
async def manager(app: FastAPI, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    await caseload(tenant)
    async with browser(app) as client:
        assert (await sign_in(client, await read_key(app, tenant))).status_code == 303
        yield client


async def page(client: httpx.AsyncClient, path: str, **params: str) -> str:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.text


def section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    end = html.find("<section", start)
    return html[start : end if end > 0 else len(html)]


def rows(html: str) -> list[list[str]]:
    """The body rows of the first table in `html`, as the text of their cells."""
    body = html[html.index("<tbody>") : html.index("</tbody>")]
    cells = re.compile(r"<t[hd][^>]*>(.*?)</t[hd]>", re.S)
    return [
        [unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in cells.findall(row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


async def api(tenant: Tenant, path: str, **params: str) -> Any:
    response = await tenant.reader.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


# Links from the dashboard


async def test_every_worker_on_the_dashboard_links_to_their_page(
    manager: httpx.AsyncClient,
) -> None:
    html = await page(manager, "/dashboard")
    for worker in ("W-1", "W-2"):
        assert f'<a href="/dashboard/workers/{worker}">{worker}</a>' in section(html, "workers")
    assert '<a href="/dashboard/workers/W-1">W-1</a>' in section(html, "overdue")


async def test_every_team_on_the_dashboard_links_to_its_page(manager: httpx.AsyncClient) -> None:
    html = await page(manager, "/dashboard")
    for team in ("T-1", "T-2"):
        assert f'<a href="/dashboard/teams/{team}">{team}</a>' in section(html, "workers")


async def test_an_id_is_quoted_in_its_link_and_opens_its_page(manager: httpx.AsyncClient) -> None:
    html = await page(manager, "/dashboard")
    assert '<a href="/dashboard/workers/W%2F1%20x">W/1 x</a>' in html
    assert "<h1>Worker W/1 x</h1>" in await page(manager, "/dashboard/workers/W%2F1%20x")


async def test_links_to_people_keep_the_date_shown(manager: httpx.AsyncClient) -> None:
    html = await page(manager, "/dashboard", as_of="2026-11-19")
    assert 'href="/dashboard/workers/W-1?as_of=2026-11-19"' in html


# A worker's page


async def test_a_workers_page_lists_each_open_case_with_its_next_deadline(
    manager: httpx.AsyncClient, tenant: Tenant
) -> None:
    html = await page(manager, "/dashboard/workers/W-1")
    listed = {row[0]: row for row in rows(section(html, "caseload"))}
    assert set(listed) == {"C-1", "C-4"}
    for case_id, row in listed.items():
        running = (await api(tenant, "/v1/obligations", case_id=case_id))["items"]
        running = [o for o in running if o["status"] in ("upcoming", "due_soon", "overdue")]
        first = min(running, key=lambda o: o["due_at"])
        assert row[2] == first["rule_name"]
        assert row[4] == first["status"].replace("_", " ").capitalize()
        assert row[5] == str(len(running))
        assert row[6] == str(sum(o["status"] == "overdue" for o in running))


async def test_a_workers_most_urgent_case_comes_first(manager: httpx.AsyncClient) -> None:
    html = await page(manager, "/dashboard/workers/W-1")
    assert rows(section(html, "caseload"))[0][:5] == [
        "C-1",
        "T-1",
        "Referral decision within 1 working day",
        "Tue 3 Nov 2026",
        "Overdue",
    ]


async def test_a_worker_in_two_teams_has_one_page_naming_each_cases_team(
    manager: httpx.AsyncClient,
) -> None:
    html = await page(manager, "/dashboard/workers/W-1")
    assert {(row[0], row[1]) for row in rows(section(html, "caseload"))} == {
        ("C-1", "T-1"),
        ("C-4", "T-2"),
    }
    assert '<a href="/dashboard/teams/T-1">T-1</a>, <a href="/dashboard/teams/T-2">T-2</a>' in html


async def test_a_workers_tiles_are_the_summary_widget_for_the_worker(
    manager: httpx.AsyncClient, tenant: Tenant
) -> None:
    html = await page(manager, "/dashboard/workers/W-1")
    summary = await api(tenant, "/v1/dashboard/summary", worker_id="W-1")
    assert tiles(html) == {
        "open_cases": summary["open_cases"],
        **{k: summary["obligations"][k] for k in ("due_soon", "overdue", "escalated", "at_risk")},
    }


@pytest.mark.parametrize(
    ("section_id", "status"), [("overdue", "overdue"), ("due-soon", "due_soon")]
)
async def test_a_workers_overdue_and_due_soon_lists_are_the_obligations_api(
    manager: httpx.AsyncClient, tenant: Tenant, section_id: str, status: str
) -> None:
    html = await page(manager, "/dashboard/workers/W-1")
    found = await api(tenant, "/v1/obligations", worker_id="W-1", status=status)
    listed = [(row[0], row[1]) for row in rows(section(html, section_id)) if len(row) > 1]
    assert sorted(listed) == sorted((o["case_id"], o["rule_name"]) for o in found["items"])
    assert found["items"]


async def test_a_workers_page_at_a_past_date_lists_the_cases_open_then(
    manager: httpx.AsyncClient,
) -> None:
    html = await page(manager, "/dashboard/workers/W-1", as_of="2026-11-05")
    assert [row[0] for row in rows(section(html, "caseload"))] == ["C-1"]


async def test_a_date_typed_day_first_means_that_day(manager: httpx.AsyncClient) -> None:
    html = await page(manager, "/dashboard/workers/W-1", as_of="05/11/2026")
    assert 'datetime="2026-11-05T23:59:59.999999Z"' in html
    assert 'value="05/11/2026"' in html


async def test_a_worker_with_no_open_work_is_said_so(manager: httpx.AsyncClient) -> None:
    html = await page(manager, "/dashboard/workers/W-9")
    assert "No worker W-9 has open work" in html


async def test_a_workers_page_shows_their_timeliness(manager: httpx.AsyncClient) -> None:
    html = await page(manager, "/dashboard/workers/W-1")
    assert 'href="/dashboard/export/timeliness.csv?worker_id=W-1"' in section(html, "timeliness")


async def test_a_workers_page_needs_a_session(app: FastAPI) -> None:
    async with browser(app) as client:
        response = await client.get("/dashboard/workers/W-1")
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/sign-in")


# A team's page


async def test_a_teams_page_lists_its_workers_each_linking_to_their_page(
    manager: httpx.AsyncClient,
) -> None:
    html = section(await page(manager, "/dashboard/teams/T-2"), "workers")
    assert {row[0] for row in rows(html)} == {"W-1", "W-2"}
    assert '<a href="/dashboard/workers/W-2">W-2</a>' in html


async def test_a_teams_tiles_are_the_summary_widget_for_the_team(
    manager: httpx.AsyncClient, tenant: Tenant
) -> None:
    html = await page(manager, "/dashboard/teams/T-1")
    summary = await api(tenant, "/v1/dashboard/summary", team_id="T-1")
    assert tiles(html)["overdue"] == summary["obligations"]["overdue"] > 0
    assert tiles(html)["open_cases"] == summary["open_cases"]


async def test_a_teams_header_names_the_team(manager: httpx.AsyncClient) -> None:
    html = await page(manager, "/dashboard/teams/T-1")
    assert re.search(r'class="masthead__scope">\s*Team T-1\s*</p>', html)


async def test_a_team_view_cannot_open_another_teams_page(
    app: FastAPI, tenant: Tenant, manager: httpx.AsyncClient
) -> None:
    async with browser(app) as client:
        await sign_in(client, await embed_token(tenant, team_id="T-1"))
        assert (await client.get("/dashboard/teams/T-2")).status_code == 404


async def test_a_team_view_sees_its_teams_part_of_a_worker(
    app: FastAPI, tenant: Tenant, manager: httpx.AsyncClient
) -> None:
    async with browser(app) as client:
        await sign_in(client, await embed_token(tenant, team_id="T-1"))
        html = await page(client, "/dashboard/workers/W-1")
    assert [row[0] for row in rows(section(html, "caseload"))] == ["C-1"]


# Downloads


async def test_a_workers_page_links_each_list_as_csv_for_the_worker_and_date(
    manager: httpx.AsyncClient,
) -> None:
    html = await page(manager, "/dashboard/workers/W-1", as_of="2026-11-19")
    for name in ("caseload", "overdue", "due_soon", "timeliness"):
        assert f'href="/dashboard/export/{name}.csv?worker_id=W-1&amp;as_of=2026-11-19"' in html


async def test_the_caseload_csv_lists_every_case_with_its_next_deadline(
    manager: httpx.AsyncClient,
) -> None:
    header, *found = csv_rows(
        await manager.get("/dashboard/export/caseload.csv", params={"worker_id": "W-1"})
    )
    assert header[:3] == ["case_id", "worker_id", "team_id"]
    by_case = {row[0]: dict(zip(header, row, strict=True)) for row in found}
    assert set(by_case) == {"C-1", "C-4"}
    assert by_case["C-1"]["next_due_at"] == "2026-11-03T23:59:59.999999Z"
    assert by_case["C-1"]["next_status"] == "overdue"


async def test_the_due_soon_csv_lists_the_deadlines_due_soon(
    manager: httpx.AsyncClient, tenant: Tenant
) -> None:
    header, *found = csv_rows(
        await manager.get("/dashboard/export/due_soon.csv", params={"team_id": "T-2"})
    )
    expected = await api(tenant, "/v1/obligations", team_id="T-2", status="due_soon")
    assert sorted(r[header.index("id")] for r in found) == sorted(
        o["id"] for o in expected["items"]
    )


async def test_a_case_with_nothing_running_comes_last_in_the_caseload(
    manager: httpx.AsyncClient, tenant: Tenant
) -> None:
    # C-6 is opened for W-1 by a case note that starts no deadline.
    opened = event("C-6-note", "case_reopened", "C-6", "2026-11-10T10:00:00Z", worker_id="W-1")
    response = await tenant.writer.post("/v1/events", json=opened)
    assert response.status_code in (200, 201), response.text
    html = await page(manager, "/dashboard/workers/W-1")
    last = rows(section(html, "caseload"))[-1]
    assert (last[0], last[2], last[4]) == ("C-6", "Nothing running", "")
