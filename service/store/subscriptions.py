"""Webhook subscriptions: the endpoints, the alerts each wants, their secrets and health.

A subscription is disabled, with the reason, when the API asks or when it has failed for too
long or answered 410 Gone; its pending deliveries then fail (redeliverable). Transactions
that lock both deliveries and subscriptions never hold one while waiting for the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.store import keyset
from service.store.deliveries import fail_pending, lock_deliveries
from service.store.ids import sortable_id
from service.store.outbox import Recorded
from service.store.tables import Subscription, deliveries, subscriptions
from service.webhooks.signing import new_secret

ROTATION_OVERLAP = timedelta(hours=24)
Filtered = TypeVar("Filtered", str, int)


async def create_subscription(
    session: AsyncSession,
    *,
    org_id: str,
    url: str,
    description: str | None,
    event_types: list[str] | None,
    team_ids: list[str] | None,
    rule_ids: list[str] | None,
    worker_ids: list[str] | None = None,
    escalation_levels: list[int] | None = None,
    kind: str = "webhook",
    digest_schedule: str | None = None,
    now: datetime,
) -> Subscription:
    subscription = Subscription(
        id=sortable_id("wh_"),
        org_id=org_id,
        url=url,
        description=description,
        event_types=event_types,
        team_ids=team_ids,
        rule_ids=rule_ids,
        worker_ids=worker_ids,
        escalation_levels=escalation_levels,
        kind=kind,
        digest_schedule=digest_schedule,
        digest_starts_at=now if digest_schedule is not None else None,
        secret=new_secret(),
        enabled=True,
        created_at=now,
        updated_at=now,
    )
    session.add(subscription)
    await session.flush()
    return subscription


async def get_subscription(
    session: AsyncSession, org_id: str, subscription_id: str, *, lock: bool = False
) -> Subscription | None:
    query = select(Subscription).where(
        subscriptions.c.org_id == org_id, subscriptions.c.id == subscription_id
    )
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def list_subscriptions(
    session: AsyncSession, org_id: str, *, limit: int, after: tuple[datetime, str] | None
) -> list[Subscription]:
    """Oldest first, `limit` + 1 rows so the caller knows whether there is a next page."""
    query = select(Subscription).where(subscriptions.c.org_id == org_id)
    if after is not None:
        query = query.where(keyset.after(subscriptions.c.created_at, subscriptions.c.id, after))
    rows = await session.execute(
        query.order_by(subscriptions.c.created_at, subscriptions.c.id).limit(limit + 1)
    )
    return list(rows.scalars())


def filters_of(values: Iterable[Filtered] | None) -> list[Filtered] | None:
    """Store a filter as a sorted list without repeats; None (everything) stays None."""
    return None if values is None else sorted(set(values))


def set_digest_schedule(subscription: Subscription, schedule: str | None, now: datetime) -> None:
    """Change the schedule; periods before the change are never sent for the new one."""
    if schedule != subscription.digest_schedule:
        subscription.digest_schedule = schedule
        subscription.digest_starts_at = now if schedule is not None else None


async def rotate_secret(session: AsyncSession, subscription: Subscription, now: datetime) -> None:
    """A new secret; the one it replaces keeps signing beside it for ROTATION_OVERLAP."""
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = now + ROTATION_OVERLAP
    subscription.secret = new_secret()
    subscription.updated_at = now
    await session.flush()


async def disable_subscription(
    session: AsyncSession, subscription: Subscription, reason: str, now: datetime
) -> None:
    await fail_pending(session, [subscription.id], reason, now)
    subscription.enabled = False
    subscription.disabled_reason = reason
    subscription.updated_at = now
    await session.flush()


async def delete_subscription(session: AsyncSession, subscription: Subscription) -> None:
    """Delete it with its deliveries and their attempts (the foreign keys cascade)."""
    await lock_deliveries(session, deliveries.c.subscription_id == subscription.id)
    await session.execute(delete(subscriptions).where(subscriptions.c.id == subscription.id))
    session.expunge(subscription)


async def update_health(
    session: AsyncSession, recorded: Recorded, *, now: datetime, disable_after: timedelta
) -> dict[str, str]:
    """Track how long each subscription has failed without a success; disable those failing
    for `disable_after` or answered 410 Gone. The subscriptions disabled, with the reason."""
    if recorded.succeeded_subscriptions:
        await session.execute(
            update(subscriptions)
            .where(
                subscriptions.c.id.in_(sorted(recorded.succeeded_subscriptions)),
                subscriptions.c.failing_since.is_not(None),
            )
            .values(failing_since=None)
        )
    for sub_id, since in sorted(recorded.failing_subscriptions.items()):
        await session.execute(
            update(subscriptions)
            .where(subscriptions.c.id == sub_id, subscriptions.c.failing_since.is_(None))
            .values(failing_since=since)
        )
    disabled = dict(recorded.gone_subscriptions)
    if recorded.failing_subscriptions:
        stale = await session.execute(
            select(subscriptions.c.id, subscriptions.c.failing_since).where(
                subscriptions.c.id.in_(sorted(recorded.failing_subscriptions)),
                subscriptions.c.enabled.is_(True),
                subscriptions.c.failing_since <= now - disable_after,
            )
        )
        for row in stale:
            disabled.setdefault(
                row.id,
                f"no successful delivery since {row.failing_since.isoformat()} "
                f"(disabled after {disable_after})",
            )
    for sub_id, reason in sorted(disabled.items()):
        await session.execute(
            update(subscriptions)
            .where(subscriptions.c.id == sub_id, subscriptions.c.enabled.is_(True))
            .values(enabled=False, disabled_reason=reason, updated_at=now)
        )
    return disabled
