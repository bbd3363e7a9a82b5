"""A case read back whole: its allocation and status, its log, and its obligations at an instant."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.store.obligations import StoredObligation, from_row
from service.store.tables import cases, events, obligations


@dataclass(frozen=True, slots=True)
class CaseRecord:
    """The case's row (current allocation and status), every event it has recorded in the
    order they happened (voided ones included), and the obligations opened by the instant."""

    case: Row[Any]
    events: list[Row[Any]]
    obligations: list[StoredObligation]


async def read_case(
    session: AsyncSession, org_id: str, case_id: str, at: datetime
) -> CaseRecord | None:
    """The case as it stood at `at`, or None when the organisation has no such case."""
    case = (
        await session.execute(
            select(cases).where(cases.c.org_id == org_id, cases.c.case_id == case_id)
        )
    ).one_or_none()
    if case is None:
        return None
    log = await session.execute(
        select(events)
        .where(events.c.org_id == org_id, events.c.case_id == case_id)
        .order_by(events.c.occurred_at, events.c.id)
    )
    derived = await session.execute(
        select(obligations)
        .where(
            obligations.c.org_id == org_id,
            obligations.c.case_id == case_id,
            obligations.c.opened_at <= at,
        )
        .order_by(obligations.c.opened_at, obligations.c.rule_id, obligations.c.sequence)
    )
    return CaseRecord(case, list(log.all()), [from_row(row) for row in derived])
