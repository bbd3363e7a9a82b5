"""Subscriptions, their deliveries and the attempts log.

Deliveries coordinate through rows, never through process memory: fan-out and claims take
rows with `FOR UPDATE SKIP LOCKED`, a claim is a lease (it moves `next_attempt_at` past the
lease's end and counts the attempt), and a result is recorded as the delivery's outcome only
when the claim that produced it is still the current one. Transactions that lock both
deliveries and subscriptions never hold one while waiting for the other, and lock
deliveries in id order, so replicas and API requests cannot deadlock one another.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Text, and_, bindparam, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.alerts import TEST_ALERT, ping_payload
from service.store.alerts import sortable_id
from service.store.db import dialect_of, upsert
from service.store.tables import Subscription, alerts, deliveries, delivery_attempts, subscriptions
from service.webhooks.signing import new_secret

ROTATION_OVERLAP = timedelta(hours=24)
DeliveryStatus = Literal["pending", "succeeded", "failed"]
Outcome = Literal["succeeded", "retrying", "failed", "superseded"]


# Subscriptions


async def create_subscription(
    session: AsyncSession,
    *,
    org_id: str,
    url: str,
    description: str | None,
    event_types: list[str] | None,
    team_ids: list[str] | None,
    rule_ids: list[str] | None,
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
        at, after_id = after
        query = query.where(
            or_(
                subscriptions.c.created_at > at,
                and_(subscriptions.c.created_at == at, subscriptions.c.id > after_id),
            )
        )
    rows = await session.execute(
        query.order_by(subscriptions.c.created_at, subscriptions.c.id).limit(limit + 1)
    )
    return list(rows.scalars())


def signing_secrets(
    secret: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> tuple[str, ...]:
    """The secrets that sign now: the current one, and the previous one during a rotation."""
    if previous and previous_expires_at is not None and previous_expires_at > now:
        return (secret, previous)
    return (secret,)


async def rotate_secret(session: AsyncSession, subscription: Subscription, now: datetime) -> None:
    """A new secret; the one it replaces keeps signing beside it for ROTATION_OVERLAP."""
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = now + ROTATION_OVERLAP
    subscription.secret = new_secret()
    subscription.updated_at = now
    await session.flush()


async def _lock_deliveries(session: AsyncSession, *criteria: Any) -> list[str]:
    """Lock matching deliveries in id order, the order every transaction locks them in."""
    query = select(deliveries.c.id).where(*criteria).order_by(deliveries.c.id).with_for_update()
    return list((await session.execute(query)).scalars())


async def fail_pending(
    session: AsyncSession, subscription_ids: Sequence[str], reason: str, now: datetime
) -> int:
    """Give up the pending deliveries of subscriptions that were disabled (redeliverable)."""
    if not subscription_ids:
        return 0
    ids = await _lock_deliveries(
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
    await _lock_deliveries(session, deliveries.c.subscription_id == subscription.id)
    await session.execute(delete(subscriptions).where(subscriptions.c.id == subscription.id))
    session.expunge(subscription)


# Deliveries as the API shows them


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
        at, before_id = before
        query = query.where(
            or_(
                deliveries.c.created_at < at,
                and_(deliveries.c.created_at == at, deliveries.c.id < before_id),
            )
        )
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

    False when it is still pending (it is being delivered already).
    """
    await _lock_deliveries(session, deliveries.c.org_id == org_id, deliveries.c.id == delivery_id)
    result = await session.execute(
        update(deliveries)
        .where(
            deliveries.c.org_id == org_id,
            deliveries.c.id == delivery_id,
            deliveries.c.status != "pending",
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
    (delivery_id,) = await _insert_deliveries(
        session, [(subscription.org_id, subscription.id, alert_id)], now
    )
    return delivery_id


# The delivery job


@dataclass(frozen=True, slots=True)
class FanOut:
    alerts: int
    deliveries: int


def _wants(subscription: Any, alert: Any) -> bool:
    """A subscription's filters: each one left unset means everything."""
    return all(
        wanted is None or value in wanted
        for wanted, value in (
            (subscription.event_types, alert.type),
            (subscription.team_ids, alert.team_id),
            (subscription.rule_ids, alert.rule_id),
        )
    )


async def _insert_deliveries(
    session: AsyncSession, pairs: Sequence[tuple[str, str, str]], now: datetime
) -> list[str]:
    """Pending deliveries for (org, subscription, alert) pairs; a pair that exists is skipped."""
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
            "next_attempt_at": now,
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


async def fan_out(session: AsyncSession, now: datetime, limit: int) -> FanOut:
    """Turn up to `limit` new alerts into one pending delivery per matching subscription."""
    new_alerts = (
        await session.execute(
            select(alerts.c.id, alerts.c.org_id, alerts.c.type, alerts.c.team_id, alerts.c.rule_id)
            .where(alerts.c.fanned_out_at.is_(None))
            .order_by(alerts.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not new_alerts:
        return FanOut(0, 0)
    wanting: dict[str, list[Any]] = {}
    found = await session.execute(
        select(
            subscriptions.c.id,
            subscriptions.c.org_id,
            subscriptions.c.event_types,
            subscriptions.c.team_ids,
            subscriptions.c.rule_ids,
        ).where(
            subscriptions.c.org_id.in_(sorted({alert.org_id for alert in new_alerts})),
            subscriptions.c.enabled.is_(True),
        )
    )
    for sub in found:
        wanting.setdefault(sub.org_id, []).append(sub)
    pairs = [
        (alert.org_id, sub.id, alert.id)
        for alert in new_alerts
        for sub in wanting.get(alert.org_id, ())
        if _wants(sub, alert)
    ]
    created = await _insert_deliveries(session, pairs, now)
    await session.execute(
        update(alerts)
        .where(alerts.c.id.in_([alert.id for alert in new_alerts]))
        .values(fanned_out_at=now)
    )
    return FanOut(len(new_alerts), len(created))


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery this process holds until `lease_until`: what to send, and where."""

    delivery_id: str
    org_id: str
    subscription_id: str
    attempt: int  # the claim's token: the delivery's attempt count after claiming
    round_attempt: int  # position in the retry schedule, from 1
    url: str
    secrets: tuple[str, ...]
    enabled: bool
    failing: bool  # the subscription had failed without a success since, when claimed
    body: bytes
    alert_created_at: datetime


async def claim_due(
    session: AsyncSession, now: datetime, limit: int, lease_until: datetime
) -> list[Claim]:
    """Lease up to `limit` due deliveries, oldest due first."""
    if limit <= 0:
        return []
    due = (
        select(deliveries.c.id)
        .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now)
        .order_by(deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = (
        await session.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(due))
            .values(
                next_attempt_at=lease_until,
                attempts=deliveries.c.attempts + 1,
                round_attempts=deliveries.c.round_attempts + 1,
            )
            .returning(deliveries.c.id, deliveries.c.attempts, deliveries.c.round_attempts)
        )
    ).all()
    if not claimed:
        return []
    tokens = {row.id: (row.attempts, row.round_attempts) for row in claimed}
    rows = await session.execute(
        select(
            deliveries.c.id,
            deliveries.c.org_id,
            deliveries.c.subscription_id,
            # The stored JSON text as it is: sent as the body, no decoding and re-encoding.
            cast(alerts.c.payload, Text).label("body"),
            alerts.c.created_at.label("alert_created_at"),
            subscriptions.c.url,
            subscriptions.c.secret,
            subscriptions.c.previous_secret,
            subscriptions.c.previous_secret_expires_at,
            subscriptions.c.enabled,
            subscriptions.c.failing_since,
        )
        .join(alerts, alerts.c.id == deliveries.c.alert_id)
        .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
        .where(deliveries.c.id.in_(list(tokens)))
    )
    claims = []
    for row in rows:
        attempt, round_attempt = tokens[row.id]
        claims.append(
            Claim(
                delivery_id=row.id,
                org_id=row.org_id,
                subscription_id=row.subscription_id,
                attempt=attempt,
                round_attempt=round_attempt,
                url=row.url,
                secrets=signing_secrets(
                    row.secret, row.previous_secret, row.previous_secret_expires_at, now
                ),
                enabled=row.enabled,
                failing=row.failing_since is not None,
                body=row.body.encode(),
                alert_created_at=row.alert_created_at,
            )
        )
    return claims


async def release_claims(session: AsyncSession, claims: Sequence[Claim], now: datetime) -> None:
    """Undo claims that were never sent: due again now, the attempt not counted."""
    await session.execute(
        update(deliveries)
        .where(
            deliveries.c.id == bindparam("b_id"),
            deliveries.c.attempts == bindparam("b_attempt"),
            deliveries.c.status == "pending",
        )
        .values(
            next_attempt_at=now,
            attempts=deliveries.c.attempts - 1,
            round_attempts=deliveries.c.round_attempts - 1,
        ),
        [{"b_id": c.delivery_id, "b_attempt": c.attempt} for c in claims],
    )


@dataclass(frozen=True, slots=True)
class Decided:
    """An attempt with what the retry policy made of it."""

    claim: Claim
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    outcome: Literal["succeeded", "retrying", "failed"]
    next_attempt_at: datetime | None
    disable_reason: str | None  # set when the receiver said 410 Gone


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a flush recorded: each attempt's final outcome, and the subscriptions it touched."""

    outcomes: list[tuple[Decided, Outcome]]
    succeeded_subscriptions: set[str]  # those that were failing: their mark is cleared
    failing_subscriptions: dict[str, datetime]
    gone_subscriptions: dict[str, str]


async def record_attempts(session: AsyncSession, decided: Sequence[Decided]) -> Recorded:
    """Log every attempt and apply the outcome of those whose claim is still current.

    A claim stops being current when its lease ran out and another claim took the delivery
    (its attempt is logged as `superseded`), or the delivery was redelivered or given up
    meanwhile: so a success is recorded once, however many replicas sent the message.
    """
    ids = sorted({item.claim.delivery_id for item in decided})
    current = {
        row.id: (row.status, row.attempts)
        for row in await session.execute(
            select(deliveries.c.id, deliveries.c.status, deliveries.c.attempts)
            .where(deliveries.c.id.in_(ids))
            .order_by(deliveries.c.id)
            .with_for_update()
        )
    }
    outcomes: list[tuple[Decided, Outcome]] = []
    for item in decided:
        state = current.get(item.claim.delivery_id)
        if state is None:
            continue  # deleted with its subscription meanwhile
        live = state == ("pending", item.claim.attempt)
        outcomes.append((item, item.outcome if live else "superseded"))
    if not outcomes:
        return Recorded([], set(), {}, {})
    attempt_rows = [
        {
            "delivery_id": item.claim.delivery_id,
            "attempt": item.claim.attempt,
            "org_id": item.claim.org_id,
            "attempted_at": item.attempted_at,
            "status_code": item.status_code,
            "latency_ms": item.latency_ms,
            "error": item.error,
            "outcome": outcome,
        }
        for item, outcome in outcomes
    ]
    await session.execute(
        upsert(dialect_of(session), delivery_attempts).on_conflict_do_nothing(
            index_elements=["delivery_id", "attempt"]
        ),
        attempt_rows,
    )
    applied = [(item, outcome) for item, outcome in outcomes if outcome != "superseded"]
    if applied:
        await session.execute(
            update(deliveries)
            .where(deliveries.c.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                next_attempt_at=bindparam("b_next"),
                last_attempt_at=bindparam("b_at"),
                last_status_code=bindparam("b_code"),
                last_error=bindparam("b_error"),
                succeeded_at=bindparam("b_succeeded"),
            ),
            [
                {
                    "b_id": item.claim.delivery_id,
                    "b_status": _status(outcome),
                    "b_next": item.next_attempt_at if outcome == "retrying" else None,
                    "b_at": item.attempted_at,
                    "b_code": item.status_code,
                    "b_error": item.error,
                    "b_succeeded": item.attempted_at if outcome == "succeeded" else None,
                }
                for item, outcome in applied
            ],
        )
    succeeded = {item.claim.subscription_id for item, o in applied if o == "succeeded"}
    # Only a subscription that was failing when claimed has a mark to clear.
    cleared = {item.claim.subscription_id for item, _ in applied if item.claim.failing} & succeeded
    failing: dict[str, datetime] = {}
    gone: dict[str, str] = {}
    for item, outcome in applied:
        sub = item.claim.subscription_id
        if item.disable_reason is not None:
            gone[sub] = item.disable_reason
        if outcome != "succeeded" and sub not in succeeded:
            failing[sub] = min(failing.get(sub, item.attempted_at), item.attempted_at)
    return Recorded(outcomes, cleared, failing, gone)


def _status(outcome: Outcome) -> DeliveryStatus:
    if outcome == "succeeded":
        return "succeeded"
    return "failed" if outcome == "failed" else "pending"


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


async def backlog(session: AsyncSession) -> dict[str, int]:
    """Alerts not fanned out yet, and pending deliveries, across every organisation."""
    unfanned = await session.execute(
        select(func.count()).select_from(alerts).where(alerts.c.fanned_out_at.is_(None))
    )
    pending = await session.execute(
        select(func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
    )
    return {"alerts": int(unfanned.scalar_one()), "deliveries": int(pending.scalar_one())}


def filters_of(values: Iterable[str] | None) -> list[str] | None:
    """Store a filter as a sorted list without repeats; None (everything) stays None."""
    return None if values is None else sorted(set(values))
