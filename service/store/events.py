"""The event log read back as recorded: voided events included and marked."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.store import keyset
from service.store.tables import events


async def find_events(
    session: AsyncSession,
    org_id: str,
    *,
    case_id: str | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[Row[Any]]:
    """Oldest first, of one case if `case_id` is given; `after` is the (occurred_at, id) of
    the last one seen. `limit` + 1 rows, so the caller knows whether there is a next page."""
    query = select(events).where(events.c.org_id == org_id)
    if case_id is not None:
        query = query.where(events.c.case_id == case_id)
    if after is not None:
        query = query.where(keyset.after(events.c.occurred_at, events.c.id, after))
    rows = await session.execute(query.order_by(events.c.occurred_at, events.c.id).limit(limit + 1))
    return list(rows.all())


async def get_event(session: AsyncSession, org_id: str, event_id: str) -> Row[Any] | None:
    return (
        await session.execute(
            select(events).where(events.c.org_id == org_id, events.c.id == event_id)
        )
    ).one_or_none()
