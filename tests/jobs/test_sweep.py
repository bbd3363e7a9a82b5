"""The alert sweep and the write path record each alert an obligation owes, once, ever.

A referral on Friday 20 November 2026 opens referral-decision (due Monday 23, due soon from
00:00 that day, escalating after 24 and 26 November) and first-contact (due Wednesday 25,
due soon from Tuesday 24).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select
from webhook_harness import Alerting, AppAndClock, alerting_app, alerting_for, post, referral

from service.store.db import transaction
from service.store.tables import obligations


@pytest.fixture(scope="module")
async def module_app(app: FastAPI, database_url: str) -> AsyncIterator[AppAndClock]:
    async with alerting_app(database_url) as app_and_clock:
        yield app_and_clock


@pytest.fixture
async def alerting(module_app: AppAndClock) -> AsyncIterator[Alerting]:
    async with alerting_for(module_app) as view:
        yield view


def keys(alerts: list[Any]) -> list[tuple[str, str, int]]:
    """(rule, type, level) of each alert, sorted: what a test expects to have been raised."""
    return sorted((a.rule_id, a.type, a.level) for a in alerts)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


async def test_nothing_is_owed_for_a_fresh_referral(alerting: Alerting) -> None:
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", "2026-11-20T09:00:00Z"))
    assert await alerting.alerts(tenant.org_id) == []


async def test_the_sweep_raises_due_soon_when_its_day_starts(alerting: Alerting) -> None:
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", "2026-11-20T09:00:00Z"))
    alerting.clock.now = at("2026-11-23T00:00:00Z")
    await alerting.sweep()
    assert keys(await alerting.alerts(tenant.org_id)) == [
        ("referral-decision", "obligation.due_soon", 0)
    ]


async def test_the_sweep_raises_overdue_once_the_due_day_has_ended(alerting: Alerting) -> None:
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", "2026-11-20T09:00:00Z"))
    alerting.clock.now = at("2026-11-23T12:00:00Z")
    await alerting.sweep()
    alerting.clock.now = at("2026-11-24T00:00:00Z")
    await alerting.sweep()
    assert keys(await alerting.alerts(tenant.org_id)) == [
        ("first-contact", "obligation.due_soon", 0),
        ("referral-decision", "obligation.due_soon", 0),
        ("referral-decision", "obligation.overdue", 0),
    ]


async def test_a_sweep_that_ran_late_raises_only_the_current_state(alerting: Alerting) -> None:
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", "2026-11-20T09:00:00Z"))
    alerting.clock.now = at("2026-12-07T12:00:00Z")
    await alerting.sweep()
    assert keys(await alerting.alerts(tenant.org_id)) == [
        ("first-contact", "obligation.escalated", 2),
        ("first-contact", "obligation.overdue", 0),
        ("referral-decision", "obligation.escalated", 2),
        ("referral-decision", "obligation.overdue", 0),
    ]


async def test_a_backdated_referral_alerts_its_current_state_as_it_is_ingested(
    alerting: Alerting,
) -> None:
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", "2026-11-02T09:00:00Z"))
    assert keys(await alerting.alerts(tenant.org_id)) == [
        ("first-contact", "obligation.escalated", 2),
        ("first-contact", "obligation.overdue", 0),
        ("referral-decision", "obligation.escalated", 2),
        ("referral-decision", "obligation.overdue", 0),
    ]


async def test_an_alert_is_recorded_with_a_snapshot_of_the_obligation(alerting: Alerting) -> None:
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", "2026-11-02T09:00:00Z", team_id="T-9"))
    alert = next(
        a
        for a in await alerting.alerts(tenant.org_id)
        if a.rule_id == "referral-decision" and a.type == "obligation.overdue"
    )
    data = alert.payload["data"]
    assert alert.payload["type"] == "obligation.overdue"
    assert alert.payload["timestamp"] == "2026-11-20T12:00:00Z"
    assert data["obligation"]["status"] == "overdue"
    assert data["obligation"]["escalation_level"] == 2
    assert data["case"] == {"case_id": "C-1", "worker_id": "W-1", "team_id": "T-9"}
    assert data["rule"]["id"] == "referral-decision"
    assert data["rule"]["source"]


async def test_sweeping_again_raises_nothing_new(alerting: Alerting) -> None:
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", "2026-11-20T09:00:00Z"))
    alerting.clock.now = at("2026-11-24T12:00:00Z")
    await alerting.sweep()
    before = await alerting.alerts(tenant.org_id)
    await alerting.sweep()
    assert await alerting.alerts(tenant.org_id) == before


async def test_a_second_sweep_at_the_same_instant_checks_nothing(alerting: Alerting) -> None:
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", "2026-11-20T09:00:00Z"))
    alerting.clock.now = at("2026-11-24T12:00:00Z")
    await alerting.sweep()
    assert (await alerting.sweep()).checked == 0


async def test_the_sweep_moves_each_checked_obligation_to_its_next_check(
    alerting: Alerting,
) -> None:
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", "2026-11-20T09:00:00Z"))
    alerting.clock.now = at("2026-11-24T12:00:00Z")
    await alerting.sweep()
    async with transaction(alerting.app.state.session_factory) as session:
        rows = await session.execute(
            select(obligations.c.rule_id, obligations.c.next_check_at).where(
                obligations.c.org_id == tenant.org_id
            )
        )
        checks = dict(rows.all())
    # referral-decision escalates after the end of Tuesday 24 (local = UTC in November).
    assert checks["referral-decision"] == at("2026-11-24T23:59:59.999999Z") + timedelta(
        microseconds=1
    )
    assert checks["assessment-completion"] > alerting.clock.now


async def test_meeting_a_deadline_late_raises_met_late(alerting: Alerting) -> None:
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", "2026-11-02T09:00:00Z", event_id="ref-late"))
    await post(tenant.writer, decision("C-1", "2026-11-20T10:00:00Z"))
    alerts = keys(await alerting.alerts(tenant.org_id))
    assert ("referral-decision", "obligation.met_late", 0) in alerts


async def test_reopening_an_obligation_by_a_void_does_not_alert_its_old_state_again(
    alerting: Alerting,
) -> None:
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", "2026-11-02T09:00:00Z"))
    await post(tenant.writer, decision("C-1", "2026-11-20T10:00:00Z", event_id="dec-1"))
    before = await alerting.alerts(tenant.org_id)
    response = await tenant.writer.post("/v1/events/dec-1/void", json={"reason": "wrong case"})
    assert response.status_code == 200
    assert await alerting.alerts(tenant.org_id) == before


async def test_activating_the_same_rules_again_raises_nothing(alerting: Alerting) -> None:
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", "2026-11-02T09:00:00Z"))
    before = await alerting.alerts(tenant.org_id)
    await tenant.activate(await tenant.admin.put("/v1/rules", json={"builtin": "england-children"}))
    assert await alerting.alerts(tenant.org_id) == before


async def test_a_rules_change_alerts_a_genuinely_new_state(alerting: Alerting) -> None:
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", "2026-11-02T09:00:00Z"))
    rules = (await tenant.reader.get("/v1/rules")).json()
    for rule in rules["rules"]:
        if rule["id"] == "referral-decision":
            rule["escalate_after"] = ["1 working day", "3 working days", "5 working days"]
    body = {k: rules[k] for k in ("id", "calendar", "rules")}
    await tenant.activate(await tenant.admin.put("/v1/rules", json=body))
    new = {(a.rule_id, a.type, a.level) for a in await alerting.alerts(tenant.org_id)}
    assert ("referral-decision", "obligation.escalated", 3) in new
    assert len([k for k in new if k[0] == "referral-decision"]) == 3


def decision(case_id: str, occurred_at: str, *, event_id: str = "dec") -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "referral_decision_made",
        "case_id": case_id,
        "occurred_at": occurred_at,
        "data": {"outcome": "assessment"},
    }
