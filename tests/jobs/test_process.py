"""The scheduler runs each background job in a process of its own: the job is done there, a
stopping service has it handed back at the end of a step, what it counted shows in the
server's /metrics, and a child that cannot start leaves its job to its lease."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from conftest import FixedClock, Tenant, make_tenant, run_jobs
from fastapi import FastAPI
from imports.workbooks import annex_a_sheet, build_workbook
from prometheus_client.parser import text_string_to_metric_families
from webhook_harness import START, eventually, running_app, settings_for

from service.jobs.background import run_next_jobs
from service.jobs.process import JOB_NICENESS, run_in_process
from service.jobs.scheduler import Jobs
from service.store.jobs import LEASE

CHILDREN = 8000  # eight steps of cases
EVENTS_AND_ALERT = ("caseclock_events_ingested_total", "import.completed")
T = TypeVar("T")


@pytest.fixture(autouse=True)
async def no_job_left_behind(app: FastAPI, clock: FixedClock) -> AsyncIterator[None]:
    """Whatever a test left queued or claimed is run here once every lease is out, so no
    other test's runner finds it."""
    yield
    clock.now += 10 * LEASE
    await run_jobs(app)


@pytest.fixture
async def scheduled(app: FastAPI, database_url: str) -> AsyncIterator[FastAPI]:
    """A replica running the scheduler, as `caseclock serve` does."""
    settings = settings_for(database_url, run_scheduler=True, sweep_interval_seconds=60)
    async with running_app(settings, FixedClock(START)) as application:
        yield application


def referrals(count: int) -> bytes:
    rows = [
        {"Child Unique ID": f"C{n:05d}", "Date of referral": date(2026, 8, 14)}
        for n in range(count)
    ]
    return build_workbook(annex_a_sheet(3, rows))


def job_id(response: httpx.Response) -> str:
    return str(response.headers["location"]).rsplit("/", 1)[-1]


def job_processes(response: httpx.Response) -> list[multiprocessing.process.BaseProcess]:
    name = f"caseclock-job-{job_id(response)}"
    return [child for child in multiprocessing.active_children() if child.name == name]


async def watch_job_process(
    tenant: Tenant, look: Callable[[int | None], T]
) -> tuple[set[T], httpx.Response]:
    """Import a list of 2,500 referrals; what `look` saw of the process that ran the job,
    from its start to its end, and the import's answer."""
    response = await tenant.queue_annex_a(referrals(2500))
    seen: set[T] = set()

    async def done() -> bool:
        seen.update(look(child.pid) for child in job_processes(response))
        return (await tenant.job(response))["state"] == "done"

    await eventually(done, seconds=120)
    return seen, response


async def test_a_job_the_scheduler_runs_is_run_in_a_process_of_its_own(
    scheduled: FastAPI,
) -> None:
    tenant = await make_tenant(scheduled)
    pids, response = await watch_job_process(tenant, lambda pid: pid)

    assert len(pids) == 1
    assert os.getpid() not in pids
    assert (await tenant.job(response))["report"]["lists"][0]["events_created"] == 2500


def parent_of(pid: int | None) -> int | None:
    """The parent of a running process, from /proc; None once it has ended."""
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


async def parents_of_job_process(tenant: Tenant) -> set[int]:
    """Import a list; the parents of the process that ran the job, seen while it ran."""
    seen, _ = await watch_job_process(tenant, parent_of)
    return {parent for parent in seen if parent is not None}


def niceness_of(pid: int | None) -> int | None:
    """A running process's nice value; None once it has ended."""
    try:
        return os.getpriority(os.PRIO_PROCESS, pid or 0) if pid else None
    except OSError:
        return None


async def test_a_job_gives_way_to_the_requests_the_server_answers(scheduled: FastAPI) -> None:
    tenant = await make_tenant(scheduled)
    seen, _ = await watch_job_process(tenant, niceness_of)

    # Seen from its first moments, before it lowered itself, to its end.
    assert os.getpriority(os.PRIO_PROCESS, 0) + JOB_NICENESS in seen


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
async def test_every_job_is_forked_from_one_fork_server(
    scheduled: FastAPI,
) -> None:
    """Not a fresh interpreter per job: the fork server has the jobs' code loaded already."""
    tenant = await make_tenant(scheduled)
    parents = [await parents_of_job_process(tenant) for _ in range(2)]

    assert parents[0] == parents[1]
    (fork_server,) = parents[0]
    assert fork_server != os.getpid()
    assert b"forkserver" in (Path("/proc") / str(fork_server) / "cmdline").read_bytes()


async def test_a_stopping_service_has_the_job_handed_back_at_the_end_of_its_step(
    scheduled: FastAPI,
) -> None:
    tenant = await make_tenant(scheduled)
    response = await tenant.queue_annex_a(referrals(CHILDREN))

    async def under_way() -> bool:
        return bool((await tenant.job(response))["progress"]["cases_done"])

    await eventually(under_way, seconds=120)
    jobs: Jobs = scheduled.state.jobs
    await jobs.stop()
    handed_back = await tenant.job(response)

    assert handed_back["state"] == "queued"
    assert 0 < handed_back["progress"]["cases_done"] < CHILDREN
    assert job_processes(response) == []


async def test_what_a_job_counts_in_its_process_shows_in_the_servers_metrics(
    scheduled: FastAPI,
) -> None:
    tenant = await make_tenant(scheduled)
    before = await metrics(tenant)
    response = await tenant.queue_annex_a(referrals(300))

    async def done() -> bool:
        return (await tenant.job(response))["state"] == "done"

    async def counted() -> bool:
        after = await metrics(tenant)
        added = {name: after.get(name, 0) - before.get(name, 0) for name in EVENTS_AND_ALERT}
        return added == {"caseclock_events_ingested_total": 300, "import.completed": 1}

    await eventually(done, seconds=60)
    await eventually(counted, seconds=10)


async def metrics(tenant: Tenant) -> dict[str, float]:
    """Events ingested, and alerts enqueued by type, as the server's /metrics shows them."""
    text = (await tenant.anonymous.get("/metrics")).text
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "caseclock_events_ingested_total":
                values[sample.name] = sample.value
            if sample.name == "caseclock_alerts_enqueued_total":
                values[sample.labels["type"]] = sample.value
    return values


async def test_a_job_whose_process_cannot_start_is_left_to_its_lease(
    app: FastAPI, tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    response = await tenant.queue_annex_a(referrals(10))
    clock = app.state.clock

    with caplog.at_level(logging.ERROR, logger="caseclock.jobs.process"):
        ran = await run_next_jobs(
            app.state.settings.database_url,
            app.state.session_factory,
            lambda: clock(),  # a clock that cannot go to another process
            threading.Event(),
            partial(run_in_process, log_format="console"),
        )

    assert ran == 0
    assert (await tenant.job(response))["state"] == "running"
    assert "could not start" in caplog.text
