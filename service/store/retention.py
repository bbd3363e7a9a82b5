"""Retention of the delivery log: old finished deliveries go, with their attempts, and old
alerts shrink to the key that keeps them from ever being raised twice.

What is kept whatever its age: anything about an obligation that is still open (its alerts,
their deliveries and attempts), pending deliveries, and every alert's unique key
(org, obligation, type, level). Deleting a key would let a later re-derivation (a void, a
rules change) raise the same alert again: "at most once, ever" outlives the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Text, cast, delete, exists, not_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.store.tables import alerts, deliveries, obligations

FINISHED = ("succeeded", "failed")
# JSON has no equality operator on PostgreSQL: pruned payloads are found by their text.
PRUNED_PAYLOAD: dict[str, str] = {}
PRUNED_TEXT = "{}"


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one batch removed."""

    deliveries: int
    alerts: int


def _of_no_open_obligation() -> object:
    """The alert's obligation is closed or no longer exists (pings concern none)."""
    return not_(
        exists().where(
            obligations.c.org_id == alerts.c.org_id,
            obligations.c.id == alerts.c.obligation_id,
            obligations.c.closed_at.is_(None),
        )
    )


async def prune_batch(session: AsyncSession, *, before: datetime, limit: int) -> Pruned:
    """Delete up to `limit` finished deliveries created before `before` (their attempts go by
    cascade) whose alert's obligation is closed, then empty up to `limit` such alerts' payloads
    once no delivery refers to them. Small batches keep each transaction's locks short."""
    old_deliveries = (
        select(deliveries.c.id)
        .join(alerts, alerts.c.id == deliveries.c.alert_id)
        .where(
            deliveries.c.created_at < before,
            deliveries.c.status.in_(FINISHED),
            _of_no_open_obligation(),  # type: ignore[arg-type]
        )
        .limit(limit)
    )
    ids = list((await session.execute(old_deliveries)).scalars())
    if ids:
        await session.execute(delete(deliveries).where(deliveries.c.id.in_(ids)))
    old_alerts = (
        select(alerts.c.id)
        .where(
            alerts.c.created_at < before,
            alerts.c.fanned_out_at.is_not(None),
            cast(alerts.c.payload, Text) != PRUNED_TEXT,
            not_(exists().where(deliveries.c.alert_id == alerts.c.id)),
            _of_no_open_obligation(),  # type: ignore[arg-type]
        )
        .limit(limit)
    )
    alert_ids = list((await session.execute(old_alerts)).scalars())
    if alert_ids:
        await session.execute(
            update(alerts).where(alerts.c.id.in_(alert_ids)).values(payload=PRUNED_PAYLOAD)
        )
    return Pruned(deliveries=len(ids), alerts=len(alert_ids))
