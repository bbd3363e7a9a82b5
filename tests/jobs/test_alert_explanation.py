"""Every obligation alert a receiver gets explains its deadline in the sentence
`GET /v1/obligations/{id}` gives, whether ingest or the sweep raised it.

A referral on Friday 28 August 2026 is due a decision by the end of Tuesday 1 September:
Monday 31 August is the Summer bank holiday in England and Wales. One on Friday 20 November
2026 is due by the end of Monday 23 November, and due soon from 00:00 that day.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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
    subscribe,
)

from service.domain.alerts import rfc3339


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


async def explanation_text(tenant: Tenant, obligation_id: str) -> str:
    response = await tenant.reader.get(f"/v1/obligations/{obligation_id}")
    assert response.status_code == 200, response.text
    text: str = response.json()["explanation"]["text"]
    return text


async def only_payload(endpoint: Receiver) -> dict[str, Any]:
    (received,) = endpoint.at("/hooks")
    return received.payload


async def test_an_overdue_alert_says_why_its_deadline_fell_when_it_did(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await subscribe(
        tenant,
        endpoint.url("/hooks"),
        event_types=["obligation.overdue"],
        rule_ids=["referral-decision"],
    )
    await post(tenant.writer, referral("C-1", "2026-08-28T09:00:00Z"))
    await alerting.deliver()
    payload = await only_payload(endpoint)
    assert payload["data"]["explanation"] == {
        "text": "Due by the end of Tue 1 Sep 2026: 1 working day after Fri 28 Aug 2026, "
        "skipping Mon 31 Aug (Summer bank holiday)."
    }


async def test_an_alert_raised_by_the_sweep_carries_the_sentence_the_api_gives(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await subscribe(
        tenant,
        endpoint.url("/hooks"),
        event_types=["obligation.due_soon"],
        rule_ids=["referral-decision"],
    )
    await post(tenant.writer, referral("C-1", rfc3339(alerting.clock.now)))
    alerting.clock.now = alerting.clock.now.replace(day=23, hour=0)
    await alerting.sweep()
    await alerting.deliver()
    payload = await only_payload(endpoint)
    obligation_id = payload["data"]["obligation"]["id"]
    assert payload["data"]["explanation"]["text"] == await explanation_text(tenant, obligation_id)
    assert payload["data"]["explanation"]["text"] == (
        "Due by the end of Mon 23 Nov 2026: 1 working day after Fri 20 Nov 2026."
    )
