"""The write path locks only the cases it writes, and knows which of them it created, on
SQLite as on PostgreSQL: a case it created has nothing stored to read back, and a batch of
events that are all stored already (a re-imported file) touches no case at all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import Tenant, make_tenant
from fastapi import FastAPI
from sqlalchemy import select

from service.domain.events import Event
from service.store.db import transaction
from service.store.ingest import SPECULATE_FROM, Outcome, ingest_events, lock_cases
from service.store.orgs import lock_ruleset
from service.store.tables import case_periods, cases, obligations

FIRST = datetime(2026, 11, 2, 9, tzinfo=UTC)


def history(case_id: str) -> list[Event]:
    referral = Event(f"{case_id}-ref", "referral_received", case_id, FIRST, worker_id="W-1")
    decision = Event(
        f"{case_id}-decision",
        "referral_decision_made",
        case_id,
        FIRST + timedelta(hours=2),
        data={"outcome": "assessment"},
    )
    return [referral, decision]


async def ingest(app: FastAPI, org_id: str, batch: Sequence[Event], now: datetime) -> list[Outcome]:
    async with transaction(app.state.session_factory) as session:
        ruleset = await lock_ruleset(session, org_id)
        return await ingest_events(session, org_id, ruleset, batch, now)


async def updated_at(app: FastAPI, org_id: str, case_id: str) -> datetime:
    async with transaction(app.state.session_factory) as session:
        found: datetime = (
            await session.execute(
                select(cases.c.updated_at).where(
                    cases.c.org_id == org_id, cases.c.case_id == case_id
                )
            )
        ).scalar_one()
        return found


async def test_locking_cases_tells_which_ones_the_transaction_created(
    app: FastAPI, tenant: Tenant
) -> None:
    await ingest(app, tenant.org_id, history("C-old"), FIRST)

    async with transaction(app.state.session_factory) as session:
        locked = await lock_cases(session, tenant.org_id, ["C-old", "C-new", "C-new"], FIRST)

    assert locked.created == {"C-new"}
    assert set(locked.allocations) == {"C-old", "C-new"}


async def test_a_batch_of_events_all_stored_already_touches_no_case(
    app: FastAPI, tenant: Tenant
) -> None:
    await ingest(app, tenant.org_id, history("C-1"), FIRST)

    again = await ingest(app, tenant.org_id, history("C-1"), FIRST + timedelta(days=1))

    assert [outcome.status for outcome in again] == ["duplicate", "duplicate"]
    assert await updated_at(app, tenant.org_id, "C-1") == FIRST


def allocated_history(case_id: str, worker: str) -> list[Event]:
    """A referral, its allocation to `worker` the next day, and the decision."""
    referral, decision = history(case_id)
    allocation = Event(
        f"{case_id}-alloc",
        "case_allocated",
        case_id,
        FIRST + timedelta(days=1),
        worker_id=worker,
        team_id="T-1",
    )
    return [referral, allocation, decision]


async def written(app: FastAPI, org_id: str) -> dict[str, Any]:
    """Everything the write path stored for the organisation's cases, by case."""
    async with transaction(app.state.session_factory) as session:
        rows = {}
        for table, _key in ((cases, cases.c.case_id), (case_periods, case_periods.c.case_id)):
            found = await session.execute(
                select(table).where(table.c.org_id == org_id).order_by(*table.primary_key)
            )
            rows[table.name] = [
                {k: v for k, v in row._mapping.items() if k not in ("org_id", "updated_at")}
                for row in found
            ]
        found = await session.execute(
            select(obligations).where(obligations.c.org_id == org_id).order_by(obligations.c.id)
        )
        rows["obligations"] = [
            {k: v for k, v in row._mapping.items() if k not in ("org_id", "digest")}
            for row in found
        ]
        return rows


async def test_a_batch_of_new_cases_writes_what_events_posted_one_at_a_time_write(
    app: FastAPI, tenant: Tenant
) -> None:
    other = await make_tenant(app)
    stored_before = history("C-known")
    # New cases enough for the batch to derive them before storing anything, one case that
    # exists already, and for a new case an event stored before under another (a conflict).
    batch = [
        *(e for n in range(SPECULATE_FROM + 5) for e in allocated_history(f"C-{n:02d}", f"W-{n}")),
        *allocated_history("C-known", "W-9")[1:],
        Event("C-known-ref", "referral_received", "C-00", FIRST, worker_id="W-2"),
    ]
    for org_id in (tenant.org_id, other.org_id):
        await ingest(app, org_id, stored_before, FIRST)

    outcomes = await ingest(app, tenant.org_id, batch, FIRST + timedelta(days=3))
    one_at_a_time = [
        (await ingest(app, other.org_id, [event], FIRST + timedelta(days=3)))[0] for event in batch
    ]

    assert outcomes == one_at_a_time
    assert outcomes[-1].status == "conflict"
    assert await written(app, tenant.org_id) == await written(app, other.org_id)
