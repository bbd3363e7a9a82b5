"""Deliveries: one alert to one subscription, and the log of its attempts.

What the API shows and does with them (the log, a redelivery, a test ping) and what the
rest of the store shares: creating deliveries, and locking them, always in id order so
replicas and API requests cannot deadlock one another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.alerts import TEST_ALERT, ping_payload
from service.store import keyset
from service.store.db import dialect_of, upsert
from service.store.ids import sortable_id
from service.store.tables import Subscription, alerts, deliveries, delivery_attempts

# `withdrawn`: never sent, because the event log no longer supports its alert (outbox.py).
DeliveryStatus = Literal["pending", "succeeded", "failed", "withdrawn"]


@dataclass(frozen=True, slots=True)
class AttemptLog:
    attempt: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    outcome: str


@dataclass(frozen=True, slots=True)
class DeliveryLog:
    id: str
    subscription_id: str
    alert_id: str
    type: str
    obligation_id: str | None
    level: int
    status: DeliveryStatus
    next_attempt_at: datetime | None
    succeeded_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    payload: dict[str, Any]
    attempt_log: list[AttemptLog]


def _delivery_query() -> Any:
    return select(
        deliveries,
        alerts.c.type,
        alerts.c.obligation_id,
        alerts.c.level,
        alerts.c.payload.label("payload"),
    ).join(alerts, alerts.c.id == deliveries.c.alert_id)


async def _with_attempts(session: AsyncSession, rows: Sequence[Any]) -> list[DeliveryLog]:
    by_delivery: dict[str, list[AttemptLog]] = {row.id: [] for row in rows}
    if rows:
        found = await session.execute(
            select(delivery_attempts)
            .where(delivery_attempts.c.delivery_id.in_(list(by_delivery)))
            .order_by(delivery_attempts.c.delivery_id, delivery_attempts.c.attempt)
        )
        for r in found:
            by_delivery[r.delivery_id].append(
                AttemptLog(
                    r.attempt, r.attempted_at, r.status_code, r.latency_ms, r.error, r.outcome
                )
            )
    return [
        DeliveryLog(
            id=row.id,
            subscription_id=row.subscription_id,
            alert_id=row.alert_id,
            type=row.type,
            obligation_id=row.obligation_id,
            level=row.level,
            status=row.status,
            next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
            succeeded_at=row.succeeded_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            created_at=row.created_at,
            payload=row.payload,
            attempt_log=by_delivery[row.id],
        )
        for row in rows
    ]


async def list_deliveries(
    session: AsyncSession,
    org_id: str,
    subscription_id: str,
    *,
    status: DeliveryStatus | None,
    limit: int,
    before: tuple[datetime, str] | None,
) -> list[DeliveryLog]:
    """Newest first, `limit` + 1 rows, each with its attempts."""
    query = _delivery_query().where(
        deliveries.c.org_id == org_id, deliveries.c.subscription_id == subscription_id
    )
    if status is not None:
        query = query.where(deliveries.c.status == status)
    if before is not None:
        query = query.where(keyset.before(deliveries.c.created_at, deliveries.c.id, before))
    rows = (
        await session.execute(
            query.order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc()).limit(limit + 1)
        )
    ).all()
    return await _with_attempts(session, rows)


async def get_delivery(session: AsyncSession, org_id: str, delivery_id: str) -> DeliveryLog | None:
    row = (
        await session.execute(
            _delivery_query().where(deliveries.c.org_id == org_id, deliveries.c.id == delivery_id)
        )
    ).one_or_none()
    if row is None:
        return None
    (log,) = await _with_attempts(session, [row])
    return log


async def redeliver(session: AsyncSession, org_id: str, delivery_id: str, now: datetime) -> bool:
    """Send a finished delivery again, same webhook-id, with a fresh retry schedule.

    False when it is still pending (it is being delivered already), or was withdrawn: its
    alert is no longer true, and a withdrawn alert is never sent.
    """
    await lock_deliveries(session, deliveries.c.org_id == org_id, deliveries.c.id == delivery_id)
    result = await session.execute(
        update(deliveries)
        .where(
            deliveries.c.org_id == org_id,
            deliveries.c.id == delivery_id,
            deliveries.c.status.in_(("succeeded", "failed")),
        )
        .values(status="pending", next_attempt_at=now, round_attempts=0, succeeded_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def enqueue_ping(session: AsyncSession, subscription: Subscription, now: datetime) -> str:
    """A `webhook.test` alert for this subscription alone; its delivery id."""
    alert_id = sortable_id("al_")
    await session.execute(
        alerts.insert().values(
            id=alert_id,
            org_id=subscription.org_id,
            obligation_id=None,
            type=TEST_ALERT,
            level=0,
            payload=ping_payload(subscription.id, now),
            created_at=now,
            fanned_out_at=now,
        )
    )
    (delivery_id,) = await insert_deliveries(
        session, [(subscription.org_id, subscription.id, alert_id)], now
    )
    return delivery_id


async def lock_deliveries(session: AsyncSession, *criteria: Any) -> list[str]:
    """Lock matching deliveries in id order, the order every transaction locks them in."""
    query = select(deliveries.c.id).where(*criteria).order_by(deliveries.c.id).with_for_update()
    return list((await session.execute(query)).scalars())


async def insert_deliveries(
    session: AsyncSession,
    pairs: Sequence[tuple[str, str, str]],
    now: datetime,
    first_attempts: Mapping[str, datetime] | None = None,
) -> list[str]:
    """Pending deliveries for (org, subscription, alert) pairs; a pair that exists is skipped.

    Each is first due `now`, or at its alert's instant in `first_attempts` (a settle period).
    """
    if not pairs:
        return []
    rows = [
        {
            "id": sortable_id("msg_"),
            "org_id": org_id,
            "subscription_id": subscription_id,
            "alert_id": alert_id,
            "status": "pending",
            "attempts": 0,
            "round_attempts": 0,
            "next_attempt_at": (first_attempts or {}).get(alert_id, now),
            "created_at": now,
        }
        for org_id, subscription_id, alert_id in pairs
    ]
    stmt = (
        upsert(dialect_of(session), deliveries)
        .on_conflict_do_nothing(index_elements=["alert_id", "subscription_id"])
        .returning(deliveries.c.id)
    )
    return list((await session.execute(stmt, rows)).scalars())


async def fail_pending(
    session: AsyncSession, subscription_ids: Sequence[str], reason: str, now: datetime
) -> int:
    """Give up the pending deliveries of subscriptions that were disabled (redeliverable)."""
    if not subscription_ids:
        return 0
    ids = await lock_deliveries(
        session,
        deliveries.c.subscription_id.in_(list(subscription_ids)),
        deliveries.c.status == "pending",
    )
    if ids:
        await session.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(ids), deliveries.c.status == "pending")
            .values(status="failed", next_attempt_at=None, last_error=reason)
        )
    return len(ids)
