"""Each (obligation, alert type, level) is delivered once, however the jobs are run: many at a
time, across restarts, and by several schedulers at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from conftest import FixedClock, Tenant, make_tenant
from fastapi import FastAPI
from sqlalchemy import func, select
from webhook_harness import (
    START,
    Receiver,
    eventually,
    post,
    receiver,
    referral,
    running_app,
    settings_for,
    subscribe,
)

from service.jobs.deliver import DeliveryConfig, WebhookSender, deliver_due
from service.jobs.sweep import sweep
from service.store.db import transaction
from service.store.tables import alerts, deliveries, delivery_attempts, obligations

CASES = 12
ROUNDS = 5
JOBS_AT_ONCE = 3


async def seed(tenant: Tenant) -> None:
    """Cases referred over the fortnight before START and just after: some alert at once,
    the rest as the clock moves on."""
    for n in range(CASES):
        day = 4 + 2 * n
        occurred = f"2026-11-{day:02d}T09:00:00Z" if day <= 20 else "2026-11-20T11:00:00Z"
        await post(tenant.writer, referral(f"C-{n}", occurred, team_id=f"T-{n % 2}"))


def alert_keys(endpoint: Receiver, path: str) -> Counter[tuple[str, str, int]]:
    """How many times the receiver got each (obligation, type, level)."""
    keys: Counter[tuple[str, str, int]] = Counter()
    for message in endpoint.at(path):
        obligation = message.payload["data"]["obligation"]
        level = (
            obligation["escalation_level"] if message.payload["type"].endswith("escalated") else 0
        )
        keys[(obligation["id"], message.payload["type"], level)] += 1
    return keys


async def recorded(application: FastAPI, org_id: str) -> dict[str, Any]:
    """What the database says: alerts raised, and successes recorded per delivery.

    Every count is read from one snapshot. Under PostgreSQL's READ COMMITTED each statement
    sees what committed before it, so a sweep committing between the alert count and the
    due-check count looked like no check left due and every alert delivered: caught up, with
    the sweep's alerts neither counted nor sent. (SQLite's BEGIN IMMEDIATE already excludes
    any commit in between.)
    """
    async with transaction(application.state.session_factory) as session:
        if not application.state.settings.is_sqlite:
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        raised = (
            await session.execute(select(func.count()).where(alerts.c.org_id == org_id))
        ).scalar_one()
        successes = (
            await session.execute(
                select(delivery_attempts.c.delivery_id, func.count())
                .join(deliveries, deliveries.c.id == delivery_attempts.c.delivery_id)
                .where(deliveries.c.org_id == org_id, delivery_attempts.c.outcome == "succeeded")
                .group_by(delivery_attempts.c.delivery_id)
            )
        ).all()
        statuses = (
            await session.execute(select(deliveries.c.status).where(deliveries.c.org_id == org_id))
        ).scalars()
        checks_due = (
            await session.execute(
                select(func.count()).where(
                    obligations.c.org_id == org_id,
                    obligations.c.next_check_at <= application.state.clock(),
                )
            )
        ).scalar_one()
        return {
            "checks_due": checks_due,
            "alerts": raised,
            "successes": [count for _, count in successes],
            "statuses": set(statuses),
        }


async def test_concurrent_sweeps_and_deliveries_across_restarts_deliver_each_alert_once(
    app: FastAPI, database_url: str
) -> None:
    clock = FixedClock(START)
    settings = settings_for(database_url)
    async with receiver() as endpoint:
        async with running_app(settings, clock) as application:
            tenant = await make_tenant(application)
            await subscribe(tenant, endpoint.url("/once"))
            await seed(tenant)
        for _ in range(ROUNDS):
            clock.now += timedelta(days=1, hours=7)
            async with running_app(settings, clock) as application:
                factory = application.state.session_factory
                config = DeliveryConfig.from_settings(settings)
                senders = [
                    WebhookSender(timeout_seconds=2, allow_private=True, concurrency=4)
                    for _ in range(JOBS_AT_ONCE)
                ]
                try:
                    await asyncio.gather(
                        *(sweep(factory, now=clock.now) for _ in range(JOBS_AT_ONCE)),
                        *(
                            deliver_due(factory, sender, config=config, clock=clock)
                            for sender in senders
                        ),
                    )
                finally:
                    for sender in senders:
                        await sender.aclose()
        async with running_app(settings, clock) as application:
            sender = WebhookSender(timeout_seconds=2, allow_private=True, concurrency=4)
            try:
                config = DeliveryConfig.from_settings(settings)
                await deliver_due(
                    application.state.session_factory, sender, config=config, clock=clock
                )
            finally:
                await sender.aclose()
            database = await recorded(application, tenant.org_id)
    received = alert_keys(endpoint, "/once")
    assert set(received.values()) == {1}
    assert len(received) == database["alerts"] > CASES
    assert database["statuses"] == {"succeeded"}
    assert set(database["successes"]) == {1}
    assert len({m.webhook_id for m in endpoint.at("/once")}) == len(endpoint.at("/once"))


async def test_several_running_schedulers_restarted_deliver_each_alert_once(
    app: FastAPI, database_url: str
) -> None:
    clock = FixedClock(START)
    settings = settings_for(
        database_url,
        run_scheduler=True,
        sweep_interval_seconds=0.05,
        delivery_interval_seconds=0.05,
    )
    async with receiver() as endpoint:
        async with running_app(settings_for(database_url), clock) as application:
            tenant = await make_tenant(application)
            await subscribe(tenant, endpoint.url("/schedulers"))
            await seed(tenant)

        async def caught_up(application: FastAPI) -> bool:
            done = await recorded(application, tenant.org_id)
            total = sum(alert_keys(endpoint, "/schedulers").values())
            swept = done["checks_due"] == 0
            return swept and done["statuses"] == {"succeeded"} and total >= done["alerts"]

        for _ in range(3):
            clock.now += timedelta(days=2)
            async with running_app(settings, clock) as first, running_app(settings, clock):
                await eventually(lambda first=first: caught_up(first))
        async with running_app(settings_for(database_url), clock) as application:
            final = await recorded(application, tenant.org_id)
    received = alert_keys(endpoint, "/schedulers")
    assert set(received.values()) == {1}
    assert len(received) == final["alerts"]
    assert len({m.webhook_id for m in endpoint.at("/schedulers")}) == len(
        endpoint.at("/schedulers")
    )
