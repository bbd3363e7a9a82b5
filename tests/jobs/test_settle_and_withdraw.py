"""Alerts are sent only for states the whole event log supports (docs/webhooks.md).

An alert raised by ingest waits the settle period (5 s here) before its first attempt, and
every attempt first judges the alert against the obligation as it is stored now: one the log
no longer supports is withdrawn with its reason, never sent, and logged.

A referral dated Monday 2 November 2026 opens referral-decision, due by the end of Tuesday 3
November (one working day). Posted on Friday 20 November it is overdue and escalated as it
is ingested; a decision dated 2 November meets it on time, one dated 20 November late.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import FixedClock, Tenant
from fastapi import FastAPI
from webhook_harness import (
    START,
    Alerting,
    AppAndClock,
    Receiver,
    alerting_for,
    receiver,
    referral,
    running_app,
    settings_for,
    subscribe,
)

from service.metrics import REGISTRY

SETTLE = timedelta(seconds=5)
REFERRED = "2026-11-02T09:00:00Z"
DECIDED_ON_TIME = "2026-11-02T15:00:00Z"
DECIDED_LATE = "2026-11-20T10:00:00Z"


@pytest.fixture(scope="module")
async def module_app(app: FastAPI, database_url: str) -> AsyncIterator[AppAndClock]:
    clock = FixedClock(START)
    settings = settings_for(database_url, alert_settle_seconds=SETTLE.total_seconds())
    async with running_app(settings, clock) as application:
        yield application, clock


@pytest.fixture
async def alerting(module_app: AppAndClock) -> AsyncIterator[Alerting]:
    async with alerting_for(module_app) as view:
        yield view


@pytest.fixture
async def endpoint() -> AsyncIterator[Receiver]:
    async with receiver() as running:
        yield running


async def subscribed(alerting: Alerting, endpoint: Receiver) -> tuple[Tenant, dict[str, Any]]:
    """A subscription to referral-decision alerts only (the referral's other deadlines are
    genuinely overdue and beside the point here)."""
    tenant = await alerting.tenant()
    return tenant, await subscribe(tenant, endpoint.url(), rule_ids=["referral-decision"])


def decision(case_id: str, occurred_at: str) -> dict[str, Any]:
    return {
        "id": f"dec-{case_id}",
        "type": "referral_decision_made",
        "case_id": case_id,
        "occurred_at": occurred_at,
        "data": {"outcome": "assessment"},
    }


async def batch(tenant: Tenant, *events: dict[str, Any]) -> None:
    response = await tenant.writer.post("/v1/events/batch", json={"events": list(events)})
    assert response.status_code == 200, response.text
    assert {r["status"] for r in response.json()["results"]} == {"created"}


async def deliveries_log(tenant: Tenant, subscription_id: str) -> list[dict[str, Any]]:
    response = await tenant.admin.get(f"/v1/webhooks/{subscription_id}/deliveries")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def types_received(endpoint: Receiver) -> list[str]:
    return sorted(r.payload["type"] for r in endpoint.at("/hooks"))


async def deliver_at(alerting: Alerting, instant: datetime) -> None:
    alerting.clock.now = instant
    await alerting.deliver()


def withdrawn_total() -> float:
    value = REGISTRY.get_sample_value(
        "caseclock_webhook_deliveries_total", {"outcome": "withdrawn"}
    )
    return value or 0.0


async def test_an_alert_raised_by_ingest_waits_the_settle_period_before_it_is_sent(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, _ = await subscribed(alerting, endpoint)
    await batch(tenant, referral("C-1", REFERRED))
    await deliver_at(alerting, START + SETTLE - timedelta(seconds=1))
    assert types_received(endpoint) == []
    await deliver_at(alerting, START + SETTLE)
    assert types_received(endpoint) == ["obligation.escalated", "obligation.overdue"]


async def test_a_completion_on_time_in_the_next_batch_withdraws_the_overdue_alert(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint)
    await batch(tenant, referral("C-1", REFERRED))
    await deliver_at(alerting, START + timedelta(seconds=1))
    alerting.clock.now = START + timedelta(seconds=2)
    await batch(tenant, decision("C-1", DECIDED_ON_TIME))
    await deliver_at(alerting, START + SETTLE + timedelta(seconds=2))
    assert types_received(endpoint) == []
    log = await deliveries_log(tenant, subscription["id"])
    reasons = {
        "obligation.overdue": "met on time",
        "obligation.escalated": "met before escalation level 2",
    }
    assert sorted(d["type"] for d in log) == sorted(reasons)
    for delivery in log:
        reason = reasons[delivery["type"]]
        assert (delivery["status"], delivery["last_error"]) == ("withdrawn", reason)
        assert [(a["outcome"], a["error"]) for a in delivery["attempts"]] == [("withdrawn", reason)]


async def test_voiding_the_referral_in_the_next_request_withdraws_its_alerts(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint)
    await batch(tenant, referral("C-1", REFERRED, event_id="ref-void"))
    alerting.clock.now = START + timedelta(seconds=1)
    response = await tenant.writer.post("/v1/events/ref-void/void", json={"reason": "wrong case"})
    assert response.status_code == 200, response.text
    await deliver_at(alerting, START + SETTLE + timedelta(seconds=1))
    assert types_received(endpoint) == []
    log = await deliveries_log(tenant, subscription["id"])
    assert len(log) == 2
    assert {(d["status"], d["last_error"]) for d in log} == {
        ("withdrawn", "obligation no longer exists")
    }


async def test_a_withdrawn_delivery_is_never_sent_later_nor_redelivered(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint)
    await batch(tenant, referral("C-1", REFERRED), decision("C-1", DECIDED_ON_TIME))
    await batch(tenant, referral("C-2", REFERRED))
    alerting.clock.now = START + timedelta(seconds=1)
    await batch(tenant, decision("C-2", DECIDED_ON_TIME))
    await deliver_at(alerting, START + SETTLE + timedelta(seconds=1))
    (withdrawn, *_) = await deliveries_log(tenant, subscription["id"])
    response = await tenant.admin.post(f"/v1/deliveries/{withdrawn['id']}/redeliver")
    assert response.status_code == 409
    assert "withdrawn" in response.json()["detail"]
    await deliver_at(alerting, START + timedelta(days=2))
    assert types_received(endpoint) == []
    response = await tenant.admin.get(f"/v1/deliveries/{withdrawn['id']}")
    assert response.json()["status"] == "withdrawn"
    assert len(response.json()["attempts"]) == 1


async def test_withdrawn_deliveries_are_counted_in_the_metrics(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, _ = await subscribed(alerting, endpoint)
    before = withdrawn_total()
    await batch(tenant, referral("C-1", REFERRED))
    alerting.clock.now = START + timedelta(seconds=1)
    await batch(tenant, decision("C-1", DECIDED_ON_TIME))
    await deliver_at(alerting, START + SETTLE + timedelta(seconds=1))
    assert withdrawn_total() - before == 2
    scraped = (await tenant.reader.get("/metrics")).text
    assert 'caseclock_webhook_deliveries_total{outcome="withdrawn"}' in scraped


async def test_a_genuine_overdue_met_late_after_it_was_sent_stays_sent_once_and_met_late_follows(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint)
    await batch(tenant, referral("C-1", REFERRED))
    await deliver_at(alerting, START + SETTLE)
    assert types_received(endpoint) == ["obligation.escalated", "obligation.overdue"]
    alerting.clock.now = START + timedelta(minutes=1)
    await batch(tenant, decision("C-1", DECIDED_LATE))
    await deliver_at(alerting, START + timedelta(minutes=1) + SETTLE)
    await deliver_at(alerting, START + timedelta(days=2))
    assert types_received(endpoint) == [
        "obligation.escalated",
        "obligation.met_late",
        "obligation.overdue",
    ]
    log = await deliveries_log(tenant, subscription["id"])
    assert {d["status"] for d in log} == {"succeeded"}
    assert all(len(d["attempts"]) == 1 for d in log)


async def test_an_alert_raised_by_the_sweep_is_sent_with_no_settle_wait(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, _ = await subscribed(alerting, endpoint)
    await batch(tenant, referral("C-1", "2026-11-20T09:00:00Z"))
    # Due by the end of Monday 23 November (one working day after Friday 20).
    alerting.clock.now = datetime.fromisoformat("2026-11-24T00:00:01+00:00")
    await alerting.sweep()
    await alerting.deliver()
    assert types_received(endpoint) == ["obligation.overdue"]
