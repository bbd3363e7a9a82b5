"""Digest subscriptions: one signed digest per subscription, team and period, in local time
on working days, exactly once across replicas and restarts (docs/webhooks.md, Digests).

The subscriptions are made on Fri 20 Nov 2026 at 12:00 (GMT, so local time is UTC): the first
daily 08:00 digest is Mon 23 Nov at 08:00.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from conftest import Tenant
from fastapi import FastAPI
from webhook_harness import (
    Alerting,
    AppAndClock,
    Receiver,
    alerting_app,
    alerting_for,
    post,
    receiver,
    referral,
    running_app,
    settings_for,
    subscribe,
)

from service.jobs.digests import raise_due_digests

MONDAY_8 = datetime.fromisoformat("2026-11-23T08:00:00Z")


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


async def digest_subscription(
    tenant: Tenant, endpoint: Receiver, schedule: str = "daily 08:00", **filters: Any
) -> dict[str, Any]:
    return await subscribe(
        tenant, endpoint.url("/digest"), digest={"schedule": schedule}, **filters
    )


async def digests_of(alerting: Alerting, tenant: Tenant) -> int:
    """How many digests the tenant's subscriptions have been raised (other tests' too run)."""
    return sum(row.type.startswith("digest.") for row in await alerting.alerts(tenant.org_id))


async def raise_digests(alerting: Alerting, tenant: Tenant, at: datetime) -> int:
    """Run the digest job at `at`; how many digests it raised for the tenant."""
    before = await digests_of(alerting, tenant)
    alerting.clock.now = at
    await raise_due_digests(
        alerting.app.state.session_factory, now=at, public_url="https://caseclock.example.org"
    )
    return await digests_of(alerting, tenant) - before


def payloads(endpoint: Receiver) -> list[dict[str, Any]]:
    return [r.payload for r in endpoint.at("/digest")]


async def test_a_digest_is_one_signed_delivery_per_team_at_the_local_time(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    subscription = await digest_subscription(tenant, endpoint, team_ids=["T-A", "T-B"])
    assert await raise_digests(alerting, tenant, MONDAY_8) == 2
    await alerting.deliver()
    received = endpoint.at("/digest")
    assert all(r.verifies_with(subscription["secret"]) for r in received)
    assert sorted((p["type"], p["data"]["team_id"]) for p in payloads(endpoint)) == [
        ("digest.daily", "T-A"),
        ("digest.daily", "T-B"),
    ]
    assert {p["data"]["period"] for p in payloads(endpoint)} == {"2026-11-23"}


async def test_nothing_is_sent_before_the_first_send_time_after_subscribing(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await digest_subscription(tenant, endpoint)
    assert (
        await raise_digests(alerting, tenant, datetime.fromisoformat("2026-11-21T09:00:00Z")) == 0
    )
    assert (
        await raise_digests(alerting, tenant, datetime.fromisoformat("2026-11-23T07:59:59Z")) == 0
    )


async def test_a_digest_subscription_receives_no_alert_of_its_own(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await digest_subscription(tenant, endpoint)
    await post(tenant.writer, referral("C-1", "2026-11-02T09:00:00Z"))
    await alerting.deliver()
    assert endpoint.at("/digest") == []


async def test_the_digest_counts_what_became_overdue_since_and_the_oldest_and_who_carries_it(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await digest_subscription(tenant, endpoint, team_ids=["T-A"])
    # Referral decisions due the next working day: Tue 3 Nov (overdue before the subscription)
    # and Fri 20 Nov (overdue from its end, after the subscription: new in the first digest).
    await post(tenant.writer, referral("C-OLD", "2026-11-02T09:00:00Z"))
    await post(tenant.writer, {**referral("C-NEW", "2026-11-19T09:00:00Z"), "worker_id": "W-2"})
    await post(tenant.writer, referral("C-OTHER", "2026-11-02T09:00:00Z", team_id="T-B"))
    await raise_digests(alerting, tenant, MONDAY_8)
    await alerting.deliver()
    (digest,) = payloads(endpoint)
    data = digest["data"]
    # C-OLD: referral-decision and first-contact overdue; C-NEW: referral-decision overdue.
    assert data["counts"]["overdue"] == 3
    assert data["counts"]["open_cases"] == 2
    assert data["became_overdue"]["count"] == 1
    assert [(o["case_id"], o["rule_id"]) for o in data["became_overdue"]["oldest"]] == [
        ("C-NEW", "referral-decision")
    ]
    assert [o["case_id"] for o in data["oldest_overdue"]] == ["C-OLD", "C-OLD", "C-NEW"]
    assert [(w["worker_id"], w["overdue"]) for w in data["workers_most_overdue"]] == [
        ("W-1", 2),
        ("W-2", 1),
    ]
    assert data["dashboard_url"] == "https://caseclock.example.org/dashboard?team_id=T-A"


async def test_an_overdue_deadline_in_the_digest_carries_the_reason_recorded_for_it(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await digest_subscription(tenant, endpoint)
    # Due a decision by the end of Fri 20 Nov, a reason recorded that morning: overdue since.
    await post(tenant.writer, referral("C-1", "2026-11-19T09:00:00Z"))
    why = {
        **referral("C-1", "2026-11-20T10:00:00Z"),
        "type": "delay_reason_recorded",
        "data": {"rule_id": "referral-decision", "reason": "worker_absence"},
    }
    await post(tenant.writer, why)
    await raise_digests(alerting, tenant, MONDAY_8)
    await alerting.deliver()
    (digest,) = payloads(endpoint)
    (became,) = digest["data"]["became_overdue"]["oldest"]
    assert (became["rule_id"], became["delay_reason"]) == ("referral-decision", "worker_absence")


async def test_a_missed_period_is_sent_late_once_then_the_next_on_time(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await digest_subscription(tenant, endpoint)
    assert (
        await raise_digests(alerting, tenant, datetime.fromisoformat("2026-11-23T10:30:00Z")) == 1
    )
    assert (
        await raise_digests(alerting, tenant, datetime.fromisoformat("2026-11-23T16:00:00Z")) == 0
    )
    assert (
        await raise_digests(alerting, tenant, datetime.fromisoformat("2026-11-24T08:00:00Z")) == 1
    )
    await alerting.deliver()
    assert sorted(p["data"]["period"] for p in payloads(endpoint)) == ["2026-11-23", "2026-11-24"]


async def test_a_restarted_service_does_not_send_a_period_again(
    alerting: Alerting, endpoint: Receiver, database_url: str
) -> None:
    tenant = await alerting.tenant()
    await digest_subscription(tenant, endpoint)
    assert await raise_digests(alerting, tenant, MONDAY_8) == 1
    async with running_app(settings_for(database_url), alerting.clock) as restarted:
        await raise_due_digests(restarted.state.session_factory, now=MONDAY_8, public_url="")
    assert await digests_of(alerting, tenant) == 1


async def test_two_replicas_raising_at_once_raise_each_digest_once(
    alerting: Alerting, endpoint: Receiver, database_url: str
) -> None:
    tenant = await alerting.tenant()
    await digest_subscription(tenant, endpoint, team_ids=["T-A", "T-B"])
    alerting.clock.now = MONDAY_8
    async with running_app(settings_for(database_url), alerting.clock) as other:
        await asyncio.gather(
            *(
                raise_due_digests(factory, now=MONDAY_8, public_url="")
                for factory in (alerting.app.state.session_factory, other.state.session_factory)
                for _ in range(2)
            )
        )
    assert await digests_of(alerting, tenant) == 2
    await alerting.deliver()
    assert sorted(p["data"]["team_id"] for p in payloads(endpoint)) == ["T-A", "T-B"]


async def test_a_weekly_digest_is_a_digest_weekly(alerting: Alerting, endpoint: Receiver) -> None:
    tenant = await alerting.tenant()
    await digest_subscription(tenant, endpoint, schedule="weekly mon 08:00")
    await raise_digests(alerting, tenant, MONDAY_8)
    await alerting.deliver()
    assert [(p["type"], p["data"]["schedule"]) for p in payloads(endpoint)] == [
        ("digest.weekly", "weekly mon 08:00")
    ]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"digest": {"schedule": "daily 8am"}}, "/digest/schedule"),
        (
            {"digest": {"schedule": "daily 08:00"}, "event_types": ["obligation.overdue"]},
            "/event_types",
        ),
        ({"digest": {"schedule": "daily 08:00"}, "worker_ids": ["W-1"]}, "/worker_ids"),
        ({"digest": {"schedule": "daily 08:00"}, "kind": "alertmanager"}, "/digest"),
    ],
    ids=["bad-schedule", "event-types", "worker-ids", "alertmanager"],
)
async def test_a_digest_that_cannot_be_sent_is_refused_with_a_problem(
    alerting: Alerting, body: dict[str, Any], pointer: str
) -> None:
    tenant = await alerting.tenant()
    response = await tenant.admin.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hooks", **body}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]
