"""A backfill loads history: it alerts no state its cases reached before it was posted, and
raises one summary per subscription instead; states reached later alert as usual.

Posted on Friday 20 November 2026. A referral dated in early November is long overdue (and
escalated) by then; one dated Friday 20 November is due by the end of Monday 23.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import pytest
from conftest import Tenant
from fastapi import FastAPI
from imports.workbooks import annex_a_sheet, build_workbook
from webhook_harness import (
    Alerting,
    AppAndClock,
    Receiver,
    alerting_app,
    alerting_for,
    receiver,
    referral,
    subscribe,
)

CASES = 100
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EVENTS_PER_CASE = 10


@pytest.fixture(scope="module")
async def module_app(app: FastAPI, database_url: str) -> AsyncIterator[AppAndClock]:
    async with alerting_app(database_url) as app_and_clock:
        yield app_and_clock


@pytest.fixture
async def alerting(module_app: AppAndClock) -> AsyncIterator[Alerting]:
    async with alerting_for(module_app) as view:
        yield view


@pytest.fixture
async def endpoint() -> AsyncIterator[Receiver]:
    async with receiver() as running:
        yield running


def allocation(case_id: str, n: int, occurred_at: str) -> dict[str, Any]:
    return {
        "id": f"alloc-{case_id}-{n}",
        "type": "case_allocated",
        "case_id": case_id,
        "occurred_at": occurred_at,
        "worker_id": f"W-{n % 3}",
        "team_id": f"T-{n % 2}",
        "data": {},
    }


def history(case_number: int) -> list[dict[str, Any]]:
    """A referral in early November, then nine reallocations: ten events."""
    case_id = f"C-{case_number}"
    day = 2 + case_number % 10
    events = [referral(case_id, f"2026-11-{day:02d}T09:00:00Z", event_id=f"ref-{case_id}")]
    events += [
        allocation(case_id, n, f"2026-11-{day:02d}T10:{n:02d}:00Z")
        for n in range(1, EVENTS_PER_CASE)
    ]
    return events


async def backfill(tenant: Tenant, events: list[dict[str, Any]]) -> None:
    response = await tenant.writer.post(
        "/v1/events/batch", json={"events": events, "backfill": True}
    )
    assert response.status_code == 200, response.text
    assert {r["status"] for r in response.json()["results"]} == {"created"}, response.text


async def test_a_backfill_raises_one_summary_and_no_alert_for_states_before_it(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await subscribe(tenant, endpoint.url("/a"))
    await subscribe(tenant, endpoint.url("/b"))
    await backfill(tenant, [e for n in range(CASES) for e in history(n)])
    await alerting.deliver()
    for path in ("/a", "/b"):
        assert [r.payload["type"] for r in endpoint.at(path)] == ["backfill.completed"]


async def test_the_backfill_summary_counts_what_the_dashboard_summary_counts(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await subscribe(tenant, endpoint.url())
    await backfill(tenant, [e for n in range(CASES) for e in history(n)])
    await alerting.deliver()
    (summary_alert,) = endpoint.at("/hooks")
    data = summary_alert.payload["data"]
    summary = (await tenant.reader.get("/v1/dashboard/summary")).json()
    counts = summary["obligations"]
    assert counts["overdue"] > 0
    assert (data["overdue"], data["due_soon"], data["escalated"]) == (
        counts["overdue"],
        counts["due_soon"],
        counts["escalated"],
    )
    by_rule: dict[str, int] = {}
    for row in data["by_team_and_rule"]:
        by_rule[row["rule_id"]] = by_rule.get(row["rule_id"], 0) + row["overdue"]
    assert by_rule == {r["rule_id"]: r["overdue"] for r in summary["by_rule"] if r["overdue"]}


async def test_a_state_reached_after_the_backfill_alerts_as_usual(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await subscribe(tenant, endpoint.url(), rule_ids=["referral-decision"])
    await backfill(tenant, [referral("C-1", "2026-11-20T09:00:00Z")])
    # Due by the end of Monday 23 November (one working day after Friday 20).
    alerting.clock.now = datetime.fromisoformat("2026-11-24T00:00:01+00:00")
    await alerting.sweep()
    await alerting.deliver()
    assert [r.payload["type"] for r in endpoint.at("/hooks")] == ["obligation.overdue"]


async def test_an_import_is_a_backfill_with_one_import_completed_summary(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await subscribe(tenant, endpoint.url())
    rows = [
        {
            "Child Unique ID": f"C{n}",
            "Date of referral": date(2026, 8, 14),
            "Allocated Worker": "W1",
        }
        for n in range(5)
    ]
    response = await tenant.writer.post(
        "/v1/imports/annex-a",
        params={"extracted_on": "2026-11-20"},
        content=build_workbook(annex_a_sheet(3, rows)),
        headers={"content-type": XLSX},
    )
    await tenant.import_report(response)
    await alerting.deliver()
    (summary_alert,) = endpoint.at("/hooks")
    assert summary_alert.payload["type"] == "import.completed"
    counts = (await tenant.reader.get("/v1/dashboard/summary")).json()["obligations"]
    assert counts["overdue"] > 0
    assert summary_alert.payload["data"]["overdue"] == counts["overdue"]


async def test_the_alerts_a_backfill_silences_keep_their_key_and_no_payload(
    alerting: Alerting,
) -> None:
    tenant = await alerting.tenant()
    await backfill(tenant, history(0))
    silenced = [a for a in await alerting.alerts(tenant.org_id) if a.obligation_id is not None]
    assert silenced
    assert all(a.fanned_out_at is not None and a.payload == {} for a in silenced)
