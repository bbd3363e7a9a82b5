"""The printable digest at /dashboard/digest: the figures a digest delivery carries, for the
team chosen, as of now (docs/webhooks.md, Digests)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
from conftest import Tenant
from fastapi import FastAPI

from service.store.db import transaction
from service.store.orgs import create_api_key

FORM = {"content-type": "application/x-www-form-urlencoded"}


async def signed_in(app: FastAPI, tenant: Tenant) -> httpx.AsyncClient:
    async with transaction(app.state.session_factory) as session:
        _, key = await create_api_key(
            session,
            org_id=tenant.org_id,
            scopes=frozenset({"read"}),
            name="digest",
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("198.51.100.200", 50000)),
        base_url="http://caseclock.test",
    )
    response = await client.post("/dashboard/sign-in", content=f"credential={key}", headers=FORM)
    assert response.status_code == 303, response.text
    return client


def referral(case_id: str, at: str, team_id: str) -> dict[str, object]:
    return {
        "id": f"{case_id}-ref",
        "type": "referral_received",
        "case_id": case_id,
        "occurred_at": at,
        "worker_id": "W-1",
        "team_id": team_id,
    }


async def test_the_digest_page_lists_a_team_s_overdue_and_what_became_overdue(
    app: FastAPI, tenant: Tenant
) -> None:
    # Now is Fri 20 Nov 2026 12:00. Referral decisions fall due a working day after the
    # referral: Tue 3 Nov for C-1 (long overdue), Thu 19 Nov for C-2 (new since Thu 12:00).
    events = [
        referral("C-1", "2026-11-02T10:00:00Z", "T-1"),
        referral("C-2", "2026-11-18T10:00:00Z", "T-1"),
        referral("C-3", "2026-11-02T10:00:00Z", "T-2"),
    ]
    response = await tenant.writer.post("/v1/events/batch", json={"events": events})
    assert response.status_code == 200, response.text
    browser = await signed_in(app, tenant)
    page = await browser.get("/dashboard/digest?team_id=T-1")
    await browser.aclose()
    assert page.status_code == 200
    html = page.text
    assert "Deadlines digest: team T-1" in html
    new = html[html.index('id="new-heading"') : html.index('id="oldest-heading"')]
    assert "(1)" in new
    assert re.findall(r'<th scope="row" class="id">(C-\d)</th>', new) == ["C-2"]
    oldest = html[html.index('id="oldest-heading"') : html.index('id="workers-heading"')]
    assert re.findall(r'<th scope="row" class="id">(C-\d)</th>', oldest) == ["C-1", "C-1", "C-2"]
    assert "C-3" not in html


async def test_the_digest_page_asks_to_sign_in_first(app: FastAPI, tenant: Tenant) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://caseclock.test"
    ) as anonymous:
        response = await anonymous.get("/dashboard/digest")
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/sign-in"
