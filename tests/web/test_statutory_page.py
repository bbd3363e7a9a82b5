"""The statutory measures page and its CSV, over the real app (no browser). Read at noon on
Friday 20 November 2026, so the reporting year so far runs from Wednesday 1 April 2026."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from conftest import Tenant
from fastapi import FastAPI

from service.store.db import transaction
from service.store.orgs import create_api_key

PAGE = "/dashboard/reports/statutory"
NONE = "\u2013"  # an en dash: no figure


def event(case_id: str, kind: str, day: str, team: str) -> dict[str, str]:
    return {
        "id": f"{case_id}-{kind}",
        "type": kind,
        "case_id": case_id,
        "occurred_at": day,
        "worker_id": f"W-{team}",
        "team_id": team,
    }


async def assessed(tenant: Tenant) -> None:
    """Referred Monday 1 June 2026 and assessed Monday 15 June: 10 working days, on time.
    Referred Monday 6 July 2026 (team T-2) and assessed Friday 11 September: 48 working days
    (Monday 31 August, the summer bank holiday, passed over), late."""
    events = [
        event("C-1", "referral_received", "2026-06-01", "T-1"),
        event("C-1", "assessment_completed", "2026-06-15", "T-1"),
        event("C-2", "referral_received", "2026-07-06", "T-2"),
        event("C-2", "assessment_completed", "2026-09-11", "T-2"),
    ]
    response = await tenant.writer.post("/v1/events/batch", json={"events": events})
    assert response.status_code == 200, response.text


@pytest.fixture
async def browser(app: FastAPI, tenant: Tenant) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in to the dashboard with a read key, the year's assessments posted."""
    await assessed(tenant)
    async with transaction(app.state.session_factory) as session:
        _, key = await create_api_key(
            session,
            org_id=tenant.org_id,
            scopes=frozenset({"read"}),
            name="dashboard",
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
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


def row(html: str, measure: str) -> list[str]:
    start = html.index(f'id="measure-{measure}"')
    cells = html[start : html.index("</tr>", start)]
    return re.findall(r'<td class="num">([^<]*)</td>', cells)


async def test_the_page_sends_a_visitor_without_a_session_to_sign_in(app: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://caseclock.test"
    ) as client:
        response = await client.get(PAGE)
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/sign-in")


async def test_the_page_shows_the_reporting_year_so_far_by_default(
    browser: httpx.AsyncClient,
) -> None:
    html = (await browser.get(PAGE)).text
    assert 'id="from" name="from" type="text" inputmode="numeric" value="01/04/2026"' in html
    assert 'id="to" name="to" type="text" inputmode="numeric" value="20/11/2026"' in html


async def test_the_period_is_typed_day_first(browser: httpx.AsyncClient) -> None:
    typed = (await browser.get(PAGE, params={"from": "01/06/2026", "to": "30/06/2026"})).text
    iso = (await browser.get(PAGE, params={"from": "2026-06-01", "to": "2026-06-30"})).text
    assert 'value="01/06/2026"' in typed
    assert typed == iso


async def test_the_page_shows_each_measures_figures(browser: httpx.AsyncClient) -> None:
    html = (await browser.get(PAGE)).text
    # On time, counted, share, median of 10 and 48, left out.
    assert row(html, "assessment-from-referral") == ["1", "2", "50.0%", "29", "0"]
    # Neither assessment has a start recorded.
    assert row(html, "assessment-from-start") == ["0", "0", NONE, NONE, "2"]


async def test_the_page_keeps_to_the_team_chosen(browser: httpx.AsyncClient) -> None:
    html = (await browser.get(PAGE, params={"team_id": "T-2"})).text
    assert row(html, "assessment-from-referral") == ["0", "1", "0.0%", "48", "0"]


async def test_the_csv_link_downloads_the_figures_shown(browser: httpx.AsyncClient) -> None:
    html = (await browser.get(PAGE, params={"from": "2026-06-01", "to": "2026-06-30"})).text
    link = re.search(r'<a href="([^"]+)" download>Download CSV</a>', html)
    assert link is not None
    assert link[1] == f"{PAGE}.csv?from=2026-06-01&amp;to=2026-06-30"
    response = await browser.get(link[1].replace("&amp;", "&"))
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    lines = response.text.split("\r\n")
    assert lines[1] == (
        "assessment-from-referral,Assessments completed within 45 working days of the "
        "referral,assessment-completion,1,1,1.0,10.0,0"
    )


async def test_a_period_ending_before_it_starts_is_a_bad_request_page(
    browser: httpx.AsyncClient,
) -> None:
    response = await browser.get(PAGE, params={"from": "2026-06-01", "to": "2026-05-31"})
    assert response.status_code == 400
    assert "must not be after" in response.text
