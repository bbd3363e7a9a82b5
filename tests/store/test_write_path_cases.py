"""The write path locks only the cases it writes, and knows which of them it created, on
SQLite as on PostgreSQL: a case it created has nothing stored to read back, and a batch of
events that are all stored already (a re-imported file) touches no case at all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from conftest import Tenant
from fastapi import FastAPI
from sqlalchemy import select

from service.domain.events import Event
from service.store.db import transaction
from service.store.ingest import Outcome, ingest_events, lock_cases
from service.store.orgs import lock_ruleset
from service.store.tables import cases

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
