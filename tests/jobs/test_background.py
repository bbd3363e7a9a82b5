"""Background jobs: an import moves a chunk of cases a step, resumes where it stopped, and is
run by one runner only, whatever the number of replicas."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from conftest import FixedClock, Tenant, make_tenant, run_jobs
from fastapi import FastAPI
from imports.workbooks import annex_a_sheet, build_workbook
from sqlalchemy import select

from service.jobs import background
from service.jobs.background import Progress, run_claimed
from service.store.db import transaction
from service.store.jobs import LEASE, MAX_ATTEMPTS, Claim, ClaimLost, claim_next, renew
from service.store.tables import events

CHILDREN = 2500  # two events each (a referral and the allocation): three chunks of cases


@pytest.fixture(autouse=True)
async def no_job_left_behind(app: FastAPI, clock: FixedClock) -> AsyncIterator[None]:
    """Each test claims jobs as it pleases; whatever it left is run once every lease is out,
    so the next test claims only its own."""
    yield
    clock.now += 10 * LEASE
    await run_jobs(app)


def many_children(count: int = CHILDREN) -> bytes:
    rows = [
        {
            "Child Unique ID": f"C{n:05d}",
            "Date of referral": date(2026, 8, 14),
            "Allocated Worker": "W1",
        }
        for n in range(count)
    ]
    return build_workbook(annex_a_sheet(3, rows))


async def claim(app: FastAPI) -> Claim | None:
    async with transaction(app.state.session_factory) as session:
        return await claim_next(session, app.state.clock())


async def run(app: FastAPI, claimed: Claim, stop: threading.Event | None = None) -> list[Progress]:
    seen: list[Progress] = []
    await run_claimed(
        app.state.session_factory, claimed, app.state.clock, stop or threading.Event(), seen.append
    )
    return seen


async def test_an_imports_progress_moves_a_chunk_of_cases_at_a_time(
    app: FastAPI, tenant: Tenant
) -> None:
    await tenant.queue_annex_a(many_children())
    claimed = await claim(app)
    assert claimed is not None

    seen = await run(app, claimed)

    assert [p.cases_done for p in seen] == [0, 1000, 2000, 2500]
    assert [p.rows_done for p in seen] == [0, 1000, 2000, 2500]
    assert {(p.rows_total, p.cases_total) for p in seen} == {(2500, 2500)}


async def test_an_import_stopped_midway_resumes_after_its_last_step_and_reports_every_step(
    app: FastAPI, tenant: Tenant
) -> None:
    response = await tenant.queue_annex_a(many_children())
    stop = threading.Event()
    claimed = await claim(app)
    assert claimed is not None

    seen = await run_stopping_after_first_chunk(app, claimed, stop)
    halfway = await tenant.job(response)
    resumed = await claim(app)
    assert resumed is not None
    await run(app, resumed)
    done = await tenant.job(response)

    # The steps under way when it stopped finish (one; two on PostgreSQL) and no other starts.
    assert seen[-1].cases_done in (1000, 2000)
    assert (halfway["state"], halfway["progress"]["cases_done"]) == ("queued", seen[-1].cases_done)
    assert done["state"] == "done"
    assert done["report"]["lists"][0]["events_created"] == 2 * CHILDREN


async def test_a_step_that_fails_undoes_the_steps_after_it_and_the_checkpoint_stays_before_it(
    app: FastAPI, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    response = await tenant.queue_annex_a(many_children())
    written = background.import_chunk

    async def second_chunk_fails(session: Any, **kwargs: Any) -> bool:
        if kwargs["chunk"][0].case_id == "C01000":
            raise RuntimeError("the database went away mid-step")
        return await written(session, **kwargs)

    monkeypatch.setattr(background, "import_chunk", second_chunk_fails)
    claimed = await claim(app)
    assert claimed is not None

    seen = await run(app, claimed)
    failed = await tenant.job(response)
    async with transaction(app.state.session_factory) as session:
        found = select(events.c.case_id).where(events.c.org_id == tenant.org_id).distinct()
        stored = set((await session.execute(found)).scalars())

    # On PostgreSQL the third step was under way beside the second; it committed nothing.
    assert [p.cases_done for p in seen] == [0, 1000]
    assert (failed["state"], failed["progress"]["cases_done"]) == ("failed", 1000)
    assert stored == {f"C{n:05d}" for n in range(1000)}


async def run_stopping_after_first_chunk(
    app: FastAPI, claimed: Claim, stop: threading.Event
) -> list[Progress]:
    seen: list[Progress] = []

    def watch(progress: Progress) -> None:
        seen.append(progress)
        if progress.cases_done:
            stop.set()

    await run_claimed(app.state.session_factory, claimed, app.state.clock, stop, watch)
    return seen


async def test_importing_the_file_again_after_a_resumed_import_creates_nothing(
    app: FastAPI, tenant: Tenant
) -> None:
    data = many_children()
    await tenant.queue_annex_a(data)
    claimed = await claim(app)
    assert claimed is not None
    await run_stopping_after_first_chunk(app, claimed, threading.Event())
    await tenant.run_jobs()

    report = await tenant.import_report(await tenant.queue_annex_a(data))

    assert report["lists"][0]["events_created"] == 0
    assert report["lists"][0]["events_duplicate"] == CHILDREN


async def test_a_file_imported_before_takes_one_step_for_the_chunks_that_store_nothing(
    app: FastAPI, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(background, "UNCHANGED_STEP_SECONDS", 60.0)
    data = many_children()
    await tenant.import_report(await tenant.queue_annex_a(data))
    await tenant.queue_annex_a(data)
    claimed = await claim(app)
    assert claimed is not None

    seen = await run(app, claimed)

    assert [p.cases_done for p in seen] == [0, CHILDREN]


async def test_a_job_whose_lease_ran_out_is_claimed_again_and_its_old_runner_stops(
    app: FastAPI, tenant: Tenant, clock: FixedClock
) -> None:
    await tenant.queue_annex_a(many_children(10))
    first = await claim(app)
    assert first is not None
    clock.now += LEASE + timedelta(seconds=1)

    second = await claim(app)
    assert second is not None
    try:
        async with transaction(app.state.session_factory) as session:
            await renew(session, first, clock())
        lost = False
    except ClaimLost:
        lost = True

    assert (second.id, second.attempt) == (first.id, first.attempt + 1)
    assert lost


async def test_a_running_job_under_its_lease_is_not_claimed_by_another_runner(
    app: FastAPI, tenant: Tenant
) -> None:
    await tenant.queue_annex_a(many_children(10))
    assert await claim(app) is not None

    assert await claim(app) is None


async def test_an_organisations_jobs_run_one_at_a_time_oldest_first(
    app: FastAPI, tenant: Tenant, clock: FixedClock
) -> None:
    await tenant.queue_annex_a(many_children(10))
    clock.now += timedelta(seconds=1)
    await tenant.queue_annex_a(many_children(20))
    other = await make_tenant(app)
    await other.queue_annex_a(many_children(5))

    first = await claim(app)
    next_one = await claim(app)

    assert first is not None
    assert next_one is not None
    assert first.org_id == tenant.org_id
    assert next_one.org_id == other.org_id
    assert await claim(app) is None


async def test_a_job_stopped_too_many_times_fails_saying_its_finished_steps_stay(
    app: FastAPI, tenant: Tenant, clock: FixedClock
) -> None:
    response = await tenant.queue_annex_a(many_children(10))
    for _ in range(MAX_ATTEMPTS + 1):
        claimed = await claim(app)
        assert claimed is not None
        clock.now += LEASE + timedelta(seconds=1)
    assert claimed is not None

    await run(app, claimed)
    failed = await tenant.job(response)

    assert failed["state"] == "failed"
    assert f"stopped {MAX_ATTEMPTS} times" in failed["problem"]["detail"]
    assert "What its finished steps wrote stays" in failed["problem"]["detail"]
