"""Retention (docs/operations.md): finished deliveries older than the retention period go with
their attempts, and their alerts shrink to the key that stops them being raised again; an
open obligation's history stays whatever its age.

A referral dated 2 November, posted on 20 November, owes alerts for referral-decision and
first-contact; a decision posted then closes referral-decision, and first-contact stays open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import Tenant
from fastapi import FastAPI
from webhook_harness import (
    START,
    Alerting,
    AppAndClock,
    alerting_app,
    alerting_for,
    post,
    receiver,
    referral,
    subscribe,
)

from service.jobs.retention import prune_history

KEEP = timedelta(days=400)
BACKDATED = "2026-11-02T09:00:00Z"


@pytest.fixture(scope="module")
async def module_app(app: FastAPI, database_url: str) -> AsyncIterator[AppAndClock]:
    async with alerting_app(database_url) as app_and_clock:
        yield app_and_clock


@pytest.fixture
async def alerting(module_app: AppAndClock) -> AsyncIterator[Alerting]:
    async with alerting_for(module_app) as view:
        yield view


@pytest.fixture
async def delivered(alerting: Alerting) -> AsyncIterator[tuple[Tenant, dict[str, Any]]]:
    """One case's alerts delivered; referral-decision then met (closed), first-contact open."""
    async with receiver() as endpoint:
        tenant = await alerting.tenant()
        await subscribe(tenant, endpoint.url("/hooks"))
        await post(tenant.writer, referral("C-1", BACKDATED, event_id="ref-1"))
        await alerting.deliver()
        decision = {
            "id": "decision-1",
            "type": "referral_decision_made",
            "case_id": "C-1",
            "occurred_at": "2026-11-20T09:00:00Z",
            "data": {"outcome": "assessment"},
        }
        await post(tenant.writer, decision)
        await alerting.deliver()
        yield tenant, decision


async def prune(alerting: Alerting, days_later: int) -> None:
    await prune_history(
        alerting.app.state.session_factory, now=START + timedelta(days=days_later), keep=KEEP
    )


def by_rule(rows: list[Any], rule_id: str) -> list[Any]:
    return [row for row in rows if row.rule_id == rule_id]


async def deliveries_by_rule(alerting: Alerting, org_id: str, rule_id: str) -> list[Any]:
    alert_ids = {a.id for a in by_rule(await alerting.alerts(org_id), rule_id)}
    return [d for d in await alerting.deliveries(org_id) if d.alert_id in alert_ids]


async def test_a_closed_obligations_old_deliveries_and_attempts_are_deleted(
    alerting: Alerting, delivered: tuple[Tenant, dict[str, Any]]
) -> None:
    tenant, _ = delivered
    (gone, *_) = await deliveries_by_rule(alerting, tenant.org_id, "referral-decision")
    await prune(alerting, 401)
    assert await deliveries_by_rule(alerting, tenant.org_id, "referral-decision") == []
    assert await alerting.attempts(gone.id) == []


async def test_a_closed_obligations_old_alerts_keep_only_their_key(
    alerting: Alerting, delivered: tuple[Tenant, dict[str, Any]]
) -> None:
    tenant, _ = delivered
    before = by_rule(await alerting.alerts(tenant.org_id), "referral-decision")
    await prune(alerting, 401)
    after = by_rule(await alerting.alerts(tenant.org_id), "referral-decision")
    assert [(a.id, a.type, a.level) for a in after] == [(a.id, a.type, a.level) for a in before]
    assert all(a.payload == {} for a in after)


async def test_an_open_obligations_history_is_kept_however_old(
    alerting: Alerting, delivered: tuple[Tenant, dict[str, Any]]
) -> None:
    tenant, _ = delivered
    kept = await deliveries_by_rule(alerting, tenant.org_id, "first-contact")
    await prune(alerting, 4000)
    assert await deliveries_by_rule(alerting, tenant.org_id, "first-contact") == kept
    assert all(a.payload for a in by_rule(await alerting.alerts(tenant.org_id), "first-contact"))


async def test_history_within_the_retention_period_is_kept(
    alerting: Alerting, delivered: tuple[Tenant, dict[str, Any]]
) -> None:
    tenant, _ = delivered
    kept = await alerting.deliveries(tenant.org_id)
    await prune(alerting, 399)
    assert await alerting.deliveries(tenant.org_id) == kept


async def test_a_pruned_alert_is_never_raised_again(
    alerting: Alerting, delivered: tuple[Tenant, dict[str, Any]]
) -> None:
    tenant, decision = delivered
    await prune(alerting, 401)
    before = await alerting.alerts(tenant.org_id)
    # Voiding the decision re-opens referral-decision, overdue as before.
    voided = await tenant.writer.post(
        f"/v1/events/{decision['id']}/void", json={"reason": "recorded on the wrong case"}
    )
    assert voided.status_code == 200
    await alerting.sweep()
    after = await alerting.alerts(tenant.org_id)
    assert {(a.rule_id, a.type, a.level) for a in after} == {
        (a.rule_id, a.type, a.level) for a in before
    }
