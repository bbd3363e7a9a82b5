"""SSD syncs as jobs: queued once a day at the organisation's local time whichever replica looks
first, and resumed after a stop from where they got to. The SSD here is a folder of CSVs."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import Tenant
from sqlalchemy import func, select

from service.jobs.background import Progress, run_claimed
from service.jobs.source_syncs import queue_scheduled_syncs
from service.store import ssd_sync
from service.store.db import transaction
from service.store.jobs import claim_next
from service.store.tables import events, jobs

VISITS = "cppv_cp_visit_id,cppv_person_id,cppv_cp_visit_date,cppv_cp_visit_seen\r\n"


@pytest.fixture
def exported(tmp_path: Path) -> Path:
    folder = tmp_path / "ssd"
    folder.mkdir()
    plans = "cppl_cp_plan_id,cppl_person_id,cppl_cp_plan_start_date,cppl_cp_plan_end_date\n"
    plans += "".join(f"P{n},C{n},2026-11-02,\n" for n in range(6))
    (folder / "ssd_cp_plans.csv").write_text(plans)
    visits = VISITS + "".join(f"V{n},C{n},2026-11-10,Y\r\n" for n in range(6))
    (folder / "ssd_cp_visits.csv").write_text(visits)
    return folder


async def configure(tenant: Tenant, folder: Path, schedule: str | None) -> None:
    response = await tenant.admin.put(
        "/v1/sources/ssd", json={"path": str(folder), "schedule": schedule}
    )
    assert response.status_code == 200, response.text


async def syncs_queued(tenant: Tenant) -> int:
    async with transaction(tenant.app.state.session_factory) as session:
        count: int = (
            await session.execute(
                select(func.count()).where(
                    jobs.c.org_id == tenant.org_id, jobs.c.kind == "ssd-sync"
                )
            )
        ).scalar_one()
    return count


async def test_each_day_s_sync_is_queued_once_whichever_replica_looks_first(
    tenant: Tenant, exported: Path
) -> None:
    await configure(tenant, exported, "05:00")
    factory = tenant.app.state.session_factory
    at = datetime(2026, 11, 20, 5, 1, tzinfo=UTC)  # 05:01 in London (GMT in November)

    await queue_scheduled_syncs(factory, now=at)
    await queue_scheduled_syncs(factory, now=at)  # another replica, the same minute

    assert await syncs_queued(tenant) == 1
    await tenant.run_jobs()


async def test_no_sync_is_queued_before_its_local_time_and_a_missed_day_goes_once_late(
    tenant: Tenant, exported: Path
) -> None:
    await configure(tenant, exported, "23:30")
    factory = tenant.app.state.session_factory
    # At noon on the 20th the 19th's sync (23:30) was missed: it goes now, once.
    await queue_scheduled_syncs(factory, now=datetime(2026, 11, 20, 12, tzinfo=UTC))
    await tenant.run_jobs()
    await queue_scheduled_syncs(factory, now=datetime(2026, 11, 20, 23, 29, tzinfo=UTC))
    assert await syncs_queued(tenant) == 1
    await queue_scheduled_syncs(factory, now=datetime(2026, 11, 20, 23, 30, tzinfo=UTC))
    assert await syncs_queued(tenant) == 2
    await tenant.run_jobs()


async def test_a_sync_stopped_midway_is_resumed_from_where_it_got_to(
    tenant: Tenant, exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ssd_sync, "SYNC_CHUNK", 2)  # a case's plan and visit a step
    await configure(tenant, exported, None)
    posted = await tenant.writer.post("/v1/sources/ssd/sync")
    factory = tenant.app.state.session_factory
    clock = tenant.app.state.clock
    async with transaction(factory) as session:
        claim = await claim_next(session, clock())
    assert claim is not None
    assert claim.id == posted.json()["id"]
    stop = threading.Event()

    def stop_after_two_cases(progress: Progress) -> None:
        if progress.cases_done >= 2:
            stop.set()

    await run_claimed(factory, claim, clock, stop, stop_after_two_cases)
    # The steps under way when it stopped finish (one; two on PostgreSQL), no other starts.
    assert await _live_events(tenant) in (4, 6)

    await tenant.run_jobs()

    finished: dict[str, Any] = (await tenant.reader.get(posted.headers["location"])).json()
    assert finished["state"] == "done"
    assert await _live_events(tenant) == 12
    visits = next(t for t in finished["report"]["tables"] if t["table"] == "ssd_cp_visits")
    assert visits["created"] == 6
    assert finished["progress"]["cases_done"] == finished["progress"]["cases_total"] == 6


async def _live_events(tenant: Tenant) -> int:
    async with transaction(tenant.app.state.session_factory) as session:
        count: int = (
            await session.execute(
                select(func.count()).where(
                    events.c.org_id == tenant.org_id, events.c.voided_at.is_(None)
                )
            )
        ).scalar_one()
    return count
