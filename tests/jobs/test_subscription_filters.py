"""Subscriptions narrowed by escalation level and by worker receive only those alerts (docs/
webhooks.md, Subscribing).

A referral dated 2 November, posted on 20 November, owes four alerts: overdue and
escalation level 2 for each of referral-decision and first-contact (both rules escalate
1 and 3 working days after their due day, and 20 November is more than 3 working days
after either).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
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
    subscribe,
)

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
async def endpoint() -> AsyncIterator[Receiver]:
    async with receiver() as running:
        yield running


def types_and_levels(endpoint: Receiver, path: str) -> list[tuple[str, int]]:
    return sorted(
        (r.payload["type"], r.payload["data"]["obligation"]["escalation_level"])
        for r in endpoint.at(path)
    )


async def test_a_subscription_to_levels_2_and_3_receives_only_those_escalations(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await subscribe(tenant, endpoint.url("/head"), escalation_levels=[2, 3])
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    assert types_and_levels(endpoint, "/head") == [
        ("obligation.escalated", 2),
        ("obligation.escalated", 2),
    ]


async def test_level_0_means_the_alerts_that_are_not_escalations(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await subscribe(tenant, endpoint.url("/team"), escalation_levels=[0])
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    assert [r.payload["type"] for r in endpoint.at("/team")] == ["obligation.overdue"] * 2


async def test_a_subscription_to_a_worker_receives_only_alerts_about_their_cases(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await subscribe(tenant, endpoint.url("/w2"), worker_ids=["W-2"])
    await post(tenant.writer, referral("C-1", BACKDATED))
    await post(tenant.writer, {**referral("C-2", BACKDATED), "worker_id": "W-2"})
    await alerting.deliver()
    received = endpoint.at("/w2")
    assert len(received) == 4
    assert {r.payload["data"]["case"]["worker_id"] for r in received} == {"W-2"}


async def test_filters_are_shown_and_changed_like_the_others(alerting: Alerting) -> None:
    tenant = await alerting.tenant()
    created = await subscribe(
        tenant, "http://127.0.0.1:9/hooks", escalation_levels=[3, 2, 2], worker_ids=["W-9"]
    )
    assert (created["escalation_levels"], created["worker_ids"]) == ([2, 3], ["W-9"])
    patched = await tenant.admin.patch(
        f"/v1/webhooks/{created['id']}", json={"escalation_levels": None, "worker_ids": ["W-1"]}
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["escalation_levels"], patched.json()["worker_ids"]) == (None, ["W-1"])


@pytest.mark.parametrize(
    "levels", [[], [-1], [True], ["2"], [1.5]], ids=["empty", "negative", "bool", "text", "decimal"]
)
async def test_escalation_levels_must_be_whole_numbers_from_0(
    alerting: Alerting, levels: list[object]
) -> None:
    tenant = await alerting.tenant()
    response = await tenant.admin.post(
        "/v1/webhooks", json={"url": "http://127.0.0.1:9/hooks", "escalation_levels": levels}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["pointer"].startswith("/escalation_levels")
