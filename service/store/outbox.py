"""The outbox relayed: new alerts fanned out to deliveries, due deliveries claimed under a
lease and sent, and every attempt recorded.

Deliveries coordinate through rows, never through process memory: fan-out and claims take
rows with `FOR UPDATE SKIP LOCKED`, a claim is a lease (it moves `next_attempt_at` past the
lease's end and counts the attempt), and a result is recorded as the delivery's outcome only
when the claim that produced it is still the current one.

A claimed obligation alert is first judged against the obligation as stored now (re-derived
from the event log on every write): one the log no longer supports is withdrawn in the
claiming transaction, never sent, and the claim is not handed out.

A delivery to an Alertmanager is built when it is claimed, from the obligation as stored
now: firing, or resolved with the instant it stopped firing. While it fires, each success
leaves it pending, due again `repost_every` later, so Alertmanager never resolves it by
timeout; the claim that posts it resolved finishes it. One the log no longer supports is
withdrawn only if it was never posted: once Alertmanager holds it, it is resolved instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import Text, bindparam, func, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.alertmanager import API_PATH, PUSHED_TYPES, alertmanager_alert, ended_at
from service.domain.alerts import AlertType, OwedAlert, withdrawal_reason
from service.domain.derive import Obligation
from service.metrics import DELIVERIES, on_commit
from service.store.db import dialect_of, upsert
from service.store.deliveries import DeliveryStatus, insert_deliveries
from service.store.obligations import from_row
from service.store.tables import (
    alerts,
    deliveries,
    delivery_attempts,
    obligations,
    orgs,
    subscriptions,
)
from service.store.types import UTCDateTime
from service.webhooks.signing import signing_secrets

Outcome = Literal["succeeded", "retrying", "failed", "superseded"]
WITHDRAWN = "withdrawn"  # a delivery's status and its attempt's outcome: never sent
ALERTMANAGER = "alertmanager"  # a subscription's kind: posts to an Alertmanager's alerts API


@dataclass(frozen=True, slots=True)
class PushSettings:
    """How deliveries to an Alertmanager are built: how often a firing alert is posted again
    (well inside Alertmanager's resolve_timeout), and the address links start with."""

    repost_every: timedelta = timedelta(seconds=60)
    public_url: str = ""


@dataclass(frozen=True, slots=True)
class FanOut:
    alerts: int
    deliveries: int


def _wants(subscription: Any, alert: Any) -> bool:
    """A subscription's filters: each one left unset means everything. A digest
    subscription receives its digests only (store.digests), an Alertmanager the alerts it
    can route."""
    if subscription.digest_schedule is not None:
        return False
    if subscription.kind == ALERTMANAGER and alert.type not in PUSHED_TYPES:
        return False
    return all(
        wanted is None or value in wanted
        for wanted, value in (
            (subscription.event_types, alert.type),
            (subscription.team_ids, alert.team_id),
            (subscription.rule_ids, alert.rule_id),
            (subscription.worker_ids, alert.worker_id),
            (subscription.escalation_levels, alert.level),
        )
    )


async def fan_out(
    session: AsyncSession, now: datetime, limit: int, settle: timedelta = timedelta(0)
) -> FanOut:
    """Turn up to `limit` new alerts into one pending delivery per matching subscription.

    Alerts raised by event writes are first due `settle` after they were raised.
    """
    new_alerts = (
        await session.execute(
            select(
                alerts.c.id,
                alerts.c.org_id,
                alerts.c.type,
                alerts.c.level,
                alerts.c.team_id,
                alerts.c.worker_id,
                alerts.c.rule_id,
                alerts.c.created_at,
                alerts.c.settles,
            )
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
            subscriptions.c.worker_ids,
            subscriptions.c.escalation_levels,
            subscriptions.c.kind,
            subscriptions.c.digest_schedule,
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
    first_attempts = {
        alert.id: max(now, alert.created_at + settle) for alert in new_alerts if alert.settles
    }
    created = await insert_deliveries(session, pairs, now, first_attempts)
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
    posted_before: bool = False  # an Alertmanager alert re-posted: it reached its receiver
    repost_after: timedelta | None = None  # a firing Alertmanager alert: post it again then


async def claim_due(
    session: AsyncSession,
    now: datetime,
    limit: int,
    lease_until: datetime,
    push: PushSettings | None = None,
) -> list[Claim]:
    """Lease up to `limit` due deliveries, oldest due first."""
    push = push or PushSettings()
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
    found = await session.execute(
        select(
            deliveries.c.id,
            deliveries.c.org_id,
            deliveries.c.subscription_id,
            # The stored JSON text as it is: sent as the body, no decoding and re-encoding.
            sql_cast(alerts.c.payload, Text).label("body"),
            alerts.c.created_at.label("alert_created_at"),
            alerts.c.obligation_id,
            alerts.c.type,
            alerts.c.level,
            deliveries.c.succeeded_at,
            subscriptions.c.kind,
            subscriptions.c.url,
            subscriptions.c.secret,
            subscriptions.c.previous_secret,
            subscriptions.c.previous_secret_expires_at,
            subscriptions.c.enabled,
            subscriptions.c.failing_since,
            orgs.c.name.label("org_name"),
        )
        .join(alerts, alerts.c.id == deliveries.c.alert_id)
        .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
        .join(orgs, orgs.c.id == deliveries.c.org_id)
        .where(deliveries.c.id.in_(list(tokens)))
    )
    rows = found.all()
    current = await _obligations_now(session, rows)
    kept = await _withdraw_unsupported(session, rows, current, tokens, now)
    claims = []
    for row in kept:
        attempt, round_attempt = tokens[row.id]
        claim = Claim(
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
        if row.kind == ALERTMANAGER:
            claim = _to_alertmanager(claim, row, current, now, push)
        claims.append(claim)
    return claims


def _to_alertmanager(
    claim: Claim,
    row: Any,
    current: dict[tuple[str, str], Obligation],
    now: datetime,
    push: PushSettings,
) -> Claim:
    """The claim as a post to the Alertmanager's alerts API: firing (posted again after
    `repost_every`) or resolved, as the obligation stands now."""
    alert = OwedAlert(cast(AlertType, row.type), row.level)
    obligation = current.get((row.org_id, row.obligation_id))
    ends_at = ended_at(alert, obligation, raised_at=row.alert_created_at, now=now)
    body = alertmanager_alert(
        alert.type,
        alert.level,
        json.loads(row.body),
        org=row.org_name,
        ends_at=ends_at,
        public_url=push.public_url,
    )
    return replace(
        claim,
        url=row.url.rstrip("/") + API_PATH,
        body=json.dumps([body], separators=(",", ":")).encode(),
        posted_before=row.succeeded_at is not None,
        repost_after=push.repost_every if ends_at is None else None,
    )


async def _obligations_now(
    session: AsyncSession, rows: Sequence[Any]
) -> dict[tuple[str, str], Obligation]:
    """The stored obligations the claimed alerts concern, in one query for the whole batch."""
    wanted = {(row.org_id, row.obligation_id) for row in rows if row.obligation_id is not None}
    if not wanted:
        return {}
    found = await session.execute(
        select(obligations).where(
            obligations.c.org_id.in_(sorted({org for org, _ in wanted})),
            obligations.c.id.in_(sorted({ob_id for _, ob_id in wanted})),
        )
    )
    return {(row.org_id, row.id): from_row(row).obligation for row in found}


async def _withdraw_unsupported(
    session: AsyncSession,
    rows: Sequence[Any],
    current: dict[tuple[str, str], Obligation],
    tokens: dict[str, tuple[int, int]],
    now: datetime,
) -> list[Any]:
    """Withdraw the claimed deliveries whose alert the event log no longer supports; the rest.

    Withdrawn in the claiming transaction: the delivery is finished (`withdrawn`, never
    redelivered) and its claimed attempt is logged with the reason, so it is never sent,
    by this replica or any other. An alert an Alertmanager already holds is kept, to be
    resolved; one that stopped firing before it was ever posted (an `overdue` its escalation
    took over at once) is withdrawn too: Alertmanager could only show it resolved.
    """
    withdrawn: list[tuple[Any, str]] = []
    kept: list[Any] = []
    for row in rows:
        reason = None
        held = row.kind == ALERTMANAGER and row.succeeded_at is not None
        if row.obligation_id is not None and not held:
            alert = OwedAlert(cast(AlertType, row.type), row.level)
            obligation = current.get((row.org_id, row.obligation_id))
            raised_at = row.alert_created_at
            reason = withdrawal_reason(alert, obligation, raised_at=raised_at, now=now)
            ended = row.kind == ALERTMANAGER and ended_at(
                alert, obligation, raised_at=raised_at, now=now
            )
            if reason is None and ended:
                reason = "stopped firing before it was posted"
        if reason is None:
            kept.append(row)
        else:
            withdrawn.append((row, reason))
    if not withdrawn:
        return kept
    await session.execute(
        update(deliveries)
        .where(deliveries.c.id == bindparam("b_id"))
        .values(
            status=WITHDRAWN,
            next_attempt_at=None,
            last_attempt_at=now,
            last_status_code=None,
            last_error=bindparam("b_reason"),
        ),
        [{"b_id": row.id, "b_reason": reason} for row, reason in withdrawn],
    )
    await session.execute(
        upsert(dialect_of(session), delivery_attempts).on_conflict_do_nothing(
            index_elements=["delivery_id", "attempt"]
        ),
        [
            {
                "delivery_id": row.id,
                "attempt": tokens[row.id][0],
                "org_id": row.org_id,
                "attempted_at": now,
                "status_code": None,
                "latency_ms": 0,
                "error": reason,
                "outcome": WITHDRAWN,
            }
            for row, reason in withdrawn
        ],
    )
    count = len(withdrawn)
    on_commit(session, lambda: DELIVERIES.labels(WITHDRAWN).inc(count))
    return kept


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
                # A re-posted alert's failed attempt keeps the mark that it was once posted.
                succeeded_at=func.coalesce(
                    bindparam("b_succeeded", type_=UTCDateTime()), deliveries.c.succeeded_at
                ),
                round_attempts=bindparam("b_round"),
            ),
            [
                {
                    "b_id": item.claim.delivery_id,
                    "b_status": _status(outcome, item.next_attempt_at),
                    "b_next": item.next_attempt_at,
                    "b_at": item.attempted_at,
                    "b_code": item.status_code,
                    "b_error": item.error,
                    "b_succeeded": item.attempted_at if outcome == "succeeded" else None,
                    # A success starts a re-posted alert's retry schedule afresh.
                    "b_round": 0 if outcome == "succeeded" else item.claim.round_attempt,
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


def _status(outcome: Outcome, next_attempt_at: datetime | None) -> DeliveryStatus:
    """Pending while another attempt is due: a retry, or a firing alert's next post."""
    if next_attempt_at is not None:
        return "pending"
    return "succeeded" if outcome == "succeeded" else "failed"


async def backlog(session: AsyncSession) -> dict[str, int]:
    """Alerts not fanned out yet, and pending deliveries, across every organisation."""
    unfanned = await session.execute(
        select(func.count()).select_from(alerts).where(alerts.c.fanned_out_at.is_(None))
    )
    pending = await session.execute(
        select(func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
    )
    return {"alerts": int(unfanned.scalar_one()), "deliveries": int(pending.scalar_one())}
