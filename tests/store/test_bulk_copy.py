"""A large plain insert (by COPY on PostgreSQL, `COPY_FROM` rows or more) stores exactly what
a small one (one statement of arrays, or SQLite's executemany) stores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import Tenant, make_tenant
from fastapi import FastAPI
from sqlalchemy import Table, select

from service.domain.events import Event
from service.store.db import COPY_FROM, transaction
from service.store.ingest import ingest_events
from service.store.orgs import lock_ruleset
from service.store.tables import case_periods, obligations

FIRST = datetime(2026, 11, 2, 9, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def history(case_id: str) -> list[Event]:
    """A referral and its decision: an assessment to finish, a period with a worker."""
    return [
        Event(f"{case_id}-ref", "referral_received", case_id, FIRST, worker_id="W-1"),
        Event(
            f"{case_id}-decision",
            "referral_decision_made",
            case_id,
            FIRST + timedelta(hours=2),
            team_id="T-1",
            data={"outcome": "assessment"},
        ),
    ]


async def ingest(app: FastAPI, org_id: str, batch: Sequence[Event]) -> None:
    async with transaction(app.state.session_factory) as session:
        ruleset = await lock_ruleset(session, org_id)
        await ingest_events(session, org_id, ruleset, batch, NOW)


async def rows_of(app: FastAPI, table: Table, org_id: str, case_id: str) -> list[dict[str, Any]]:
    async with transaction(app.state.session_factory) as session:
        found = await session.execute(
            select(table).where(table.c.org_id == org_id, table.c.case_id == case_id)
        )
        # The digest is of every column, the organisation's too.
        rows = [
            {k: v for k, v in row._mapping.items() if k not in ("org_id", "digest")}
            for row in found
        ]
        return sorted(rows, key=repr)


async def test_a_case_written_among_many_reads_back_as_one_written_alone(
    app: FastAPI, tenant: Tenant
) -> None:
    many = [f"C-{n}" for n in range(COPY_FROM)]
    await ingest(app, tenant.org_id, [e for case_id in many for e in history(case_id)])
    alone = await make_tenant(app)
    await ingest(app, alone.org_id, history("C-0"))

    for table in (obligations, case_periods):
        among_many = await rows_of(app, table, tenant.org_id, "C-0")
        assert among_many
        assert among_many == await rows_of(app, table, alone.org_id, "C-0")
