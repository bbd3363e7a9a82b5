"""The scheduler runs the jobs in the lifespan of a replica that asks for it, and stops cleanly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from conftest import FixedClock, make_tenant
from fastapi import FastAPI
from sqlalchemy import select
from webhook_harness import (
    START,
    Answer,
    Receiver,
    eventually,
    post,
    receiver,
    referral,
    running_app,
    settings_for,
    subscribe,
)

from service.jobs.scheduler import (
    BACKGROUND_JOB,
    DELIVER_JOB,
    DIGEST_JOB,
    PRUNE_JOB,
    SOURCE_SYNC_JOB,
    SWEEP_JOB,
    Jobs,
)
from service.settings import Settings
from service.store.db import transaction
from service.store.tables import deliveries

BACKDATED = "2026-11-02T09:00:00Z"


@pytest.fixture
async def endpoint() -> AsyncIterator[Receiver]:
    async with receiver() as running:
        yield running


def scheduled(database_url: str) -> Settings:
    return settings_for(
        database_url, run_scheduler=True, sweep_interval_seconds=0.1, delivery_interval_seconds=0.1
    )


async def settle(application: FastAPI) -> None:
    async with transaction(application.state.session_factory) as session:
        await session.execute(
            deliveries.update()
            .where(deliveries.c.status == "pending")
            .values(status="failed", next_attempt_at=None)
        )


async def test_a_replica_with_the_scheduler_runs_its_jobs_under_stable_ids(
    app: FastAPI, database_url: str
) -> None:
    async with running_app(scheduled(database_url), FixedClock(START)) as application:
        jobs: Jobs = application.state.jobs
        found = {job.id: job for job in jobs.scheduler.get_jobs()}
        assert set(found) == {
            SWEEP_JOB,
            DELIVER_JOB,
            PRUNE_JOB,
            BACKGROUND_JOB,
            DIGEST_JOB,
            SOURCE_SYNC_JOB,
        }
        assert all(job.coalesce and job.max_instances == 1 for job in found.values())


async def test_the_job_intervals_come_from_the_settings(app: FastAPI, database_url: str) -> None:
    settings = settings_for(
        database_url, run_scheduler=True, sweep_interval_seconds=7, delivery_interval_seconds=3
    )
    async with running_app(settings, FixedClock(START)) as application:
        jobs: Jobs = application.state.jobs
        assert jobs.scheduler.get_job(SWEEP_JOB).trigger.interval == timedelta(seconds=7)
        assert jobs.scheduler.get_job(DELIVER_JOB).trigger.interval == timedelta(seconds=3)


async def test_an_api_only_replica_runs_no_scheduler(app: FastAPI) -> None:
    assert app.state.jobs is None
    assert "scheduler" not in app.state.readiness.checks()


async def test_a_running_scheduler_is_ready(app: FastAPI, database_url: str) -> None:
    async with running_app(scheduled(database_url), FixedClock(START)) as application:
        assert application.state.readiness.checks()["scheduler"] == "ok"


async def test_a_stopped_scheduler_is_not_ready(app: FastAPI, database_url: str) -> None:
    async with running_app(scheduled(database_url), FixedClock(START)) as application:
        jobs: Jobs = application.state.jobs
        await jobs.stop()
        assert application.state.readiness.checks()["scheduler"] == "stopped"


async def test_the_running_scheduler_delivers_alerts_as_they_are_raised(
    app: FastAPI, database_url: str, endpoint: Receiver
) -> None:
    async with running_app(scheduled(database_url), FixedClock(START)) as application:
        tenant = await make_tenant(application)
        await subscribe(tenant, endpoint.url("/scheduled"))
        await post(tenant.writer, referral("C-1", BACKDATED))

        async def all_four() -> bool:
            return len(endpoint.at("/scheduled")) == 4

        await eventually(all_four)
        await settle(application)


async def test_the_running_scheduler_sweeps_deadlines_as_they_slip(
    app: FastAPI, database_url: str, endpoint: Receiver
) -> None:
    clock = FixedClock(START)
    async with running_app(scheduled(database_url), clock) as application:
        tenant = await make_tenant(application)
        await subscribe(tenant, endpoint.url("/slipping"), event_types=["obligation.overdue"])
        await post(tenant.writer, referral("C-1", "2026-11-20T09:00:00Z"))
        clock.now = datetime(2026, 11, 24, 0, 0, 1, tzinfo=UTC)

        async def overdue() -> bool:
            return len(endpoint.at("/slipping")) == 1

        await eventually(overdue)
        assert endpoint.at("/slipping")[0].payload["data"]["rule"]["id"] == "referral-decision"
        await settle(application)


async def test_a_test_ping_wakes_the_delivery_job_before_its_next_tick(
    app: FastAPI, database_url: str, endpoint: Receiver
) -> None:
    settings = settings_for(
        database_url, run_scheduler=True, sweep_interval_seconds=60, delivery_interval_seconds=60
    )
    async with running_app(settings, FixedClock(START)) as application:
        tenant = await make_tenant(application)
        subscription = await subscribe(tenant, endpoint.url("/ping"))
        response = await tenant.admin.post(f"/v1/webhooks/{subscription['id']}/test")
        assert response.status_code == 202

        async def pinged() -> bool:
            return len(endpoint.at("/ping")) == 1

        await eventually(pinged, seconds=5)


async def test_shutdown_lets_a_delivery_under_way_finish_and_records_it(
    app: FastAPI, database_url: str, endpoint: Receiver
) -> None:
    async with running_app(scheduled(database_url), FixedClock(START)) as application:
        tenant = await make_tenant(application)
        subscription = await subscribe(
            tenant,
            endpoint.url("/slow"),
            event_types=["obligation.overdue"],
            rule_ids=["referral-decision"],
        )
        endpoint.answer("/slow", Answer(200, delay=1.0))
        await post(tenant.writer, referral("C-1", BACKDATED))

        async def under_way() -> bool:
            return len(endpoint.at("/slow")) == 1

        await eventually(under_way)
    async with (
        running_app(settings_for(database_url), FixedClock(START)) as application,
        transaction(application.state.session_factory) as session,
    ):
        statuses = await session.execute(
            select(deliveries.c.status).where(deliveries.c.subscription_id == subscription["id"])
        )
        assert list(statuses.scalars()) == ["succeeded"]
