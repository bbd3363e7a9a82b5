"""Digests: what a team's deadlines look like this morning, raised once per subscription,
team and period, and delivered like any other alert.

A digest is an alert row with one delivery, written in the transaction that takes its
(subscription, team, period) key: replicas that find the same period due race for the key,
and the one that loses inserts nothing. The figures are the dashboard's own reads, so a
digest agrees with `/dashboard/digest` and `GET /v1/dashboard/summary` at the same instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.alertmanager import dashboard_links
from service.domain.alerts import rfc3339
from service.domain.digests import DigestPeriod, DigestSchedule
from service.domain.rules import Ruleset
from service.metrics import count_alerts_enqueued
from service.store.dashboard_reads import (
    Load,
    OverdueRow,
    Scope,
    Summary,
    at_risk_count,
    listed,
    loads,
    open_cases,
    rule_counts,
    summarise,
)
from service.store.db import dialect_of, upsert
from service.store.deliveries import insert_deliveries
from service.store.ids import sortable_id
from service.store.tables import alerts, digests, subscriptions

OLDEST_SHOWN = 10
WORKERS_SHOWN = 5
EVERY_TEAM = ""  # the team key of a digest for the whole organisation


@dataclass(frozen=True, slots=True)
class DigestContent:
    """What a digest says about a scope at `as_of`: the tiles, what fell overdue since the
    last digest, the oldest overdue, and the workers carrying most."""

    as_of: datetime
    since: datetime
    summary: Summary
    became_overdue: int
    became_overdue_first: list[OverdueRow]
    oldest_overdue: list[OverdueRow]
    workers: list[Load]


@dataclass(frozen=True, slots=True)
class DigestSubscription:
    id: str
    org_id: str
    team_ids: list[str] | None
    schedule: DigestSchedule
    starts_at: datetime


async def digest_content(
    session: AsyncSession, scope: Scope, at: datetime, since: datetime, ruleset: Ruleset
) -> DigestContent:
    """The digest's figures, read in one session (a digest is raised inside a write)."""
    calendar = ruleset.calendar
    tiles = summarise(
        await rule_counts(session, scope, at, ruleset),
        await open_cases(session, scope, at),
        await at_risk_count(session, scope, at),
    )
    oldest, _ = await listed(session, scope, at, calendar, "overdue", limit=OLDEST_SHOWN)
    became_first, became = await listed(
        session, scope, at, calendar, "overdue", limit=OLDEST_SHOWN, due_since=since
    )
    workers = await loads(session, scope, at, calendar, by="worker", limit=WORKERS_SHOWN)
    return DigestContent(
        as_of=at,
        since=since,
        summary=tiles,
        became_overdue=became,
        became_overdue_first=became_first,
        oldest_overdue=oldest,
        workers=[load for load in workers if load.overdue],
    )


def _overdue_json(row: OverdueRow) -> dict[str, Any]:
    return {
        "obligation_id": row.obligation_id,
        "case_id": row.case_id,
        "rule_id": row.rule_id,
        "rule_name": row.rule_name,
        "worker_id": row.worker_id,
        "team_id": row.team_id,
        "due_at": rfc3339(row.due_at),
        "working_days_overdue": row.working_days_overdue,
        "delay_reason": row.delay_reason,
    }


def digest_payload(
    schedule: DigestSchedule,
    period: DigestPeriod,
    team_id: str | None,
    content: DigestContent,
    public_url: str,
) -> dict[str, Any]:
    """The body of a `digest.daily` or `digest.weekly` delivery."""
    tiles = content.summary
    links = dashboard_links(public_url, None, team_id)
    return {
        "type": schedule.alert_type,
        "timestamp": rfc3339(content.as_of),
        "data": {
            "schedule": str(schedule),
            "period": period.key,
            "team_id": team_id,
            "as_of": rfc3339(content.as_of),
            "since": rfc3339(content.since),
            "counts": {
                "open_cases": tiles.open_cases,
                "upcoming": tiles.upcoming,
                "due_soon": tiles.due_soon,
                "overdue": tiles.overdue,
                "at_risk": tiles.at_risk,
                "escalated": tiles.escalated,
            },
            "became_overdue": {
                "count": content.became_overdue,
                "oldest": [_overdue_json(row) for row in content.became_overdue_first],
            },
            "oldest_overdue": [_overdue_json(row) for row in content.oldest_overdue],
            "workers_most_overdue": [
                {
                    "worker_id": load.worker_id,
                    "team_id": load.team_id,
                    "overdue": load.overdue,
                    "due_soon": load.due_soon,
                    "oldest_overdue_working_days": load.oldest_overdue_working_days,
                }
                for load in content.workers
            ],
            "dashboard_url": links["dashboard"],
            "digest_url": links["dashboard"].replace("/dashboard", "/dashboard/digest", 1),
        },
    }


async def digest_subscriptions(session: AsyncSession) -> list[DigestSubscription]:
    """Every enabled subscription with a digest schedule, across organisations."""
    found = await session.execute(
        select(
            subscriptions.c.id,
            subscriptions.c.org_id,
            subscriptions.c.team_ids,
            subscriptions.c.digest_schedule,
            subscriptions.c.digest_starts_at,
        )
        .where(
            subscriptions.c.enabled.is_(True),
            subscriptions.c.digest_schedule.is_not(None),
        )
        .order_by(subscriptions.c.id)
    )
    return [
        DigestSubscription(
            row.id,
            row.org_id,
            row.team_ids,
            DigestSchedule.parse(row.digest_schedule),
            row.digest_starts_at,
        )
        for row in found
    ]


async def last_digest_at(
    session: AsyncSession, subscription_id: str, team_key: str
) -> datetime | None:
    """When the subscription's previous digest for the team was raised."""
    found = await session.execute(
        select(func.max(digests.c.created_at)).where(
            digests.c.subscription_id == subscription_id, digests.c.team_id == team_key
        )
    )
    latest: datetime | None = found.scalar_one()
    return latest


async def raise_digest(
    session: AsyncSession,
    subscription: DigestSubscription,
    team_id: str | None,
    period: DigestPeriod,
    ruleset: Ruleset,
    now: datetime,
    public_url: str,
) -> str | None:
    """Raise the period's digest for one team (None: the whole organisation) unless it was
    raised already, by this replica or another; the delivery id when this call raised it."""
    team_key = team_id if team_id is not None else EVERY_TEAM
    since = await last_digest_at(session, subscription.id, team_key) or subscription.starts_at
    taken = await session.execute(
        upsert(dialect_of(session), digests)
        .values(
            subscription_id=subscription.id,
            team_id=team_key,
            period=period.key,
            org_id=subscription.org_id,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["subscription_id", "team_id", "period"])
        .returning(digests.c.period)
    )
    if taken.first() is None:
        return None
    scope = Scope(subscription.org_id, team_id=team_id)
    content = await digest_content(session, scope, now, since, ruleset)
    alert_id = sortable_id("al_")
    await session.execute(
        alerts.insert().values(
            id=alert_id,
            org_id=subscription.org_id,
            obligation_id=None,
            type=subscription.schedule.alert_type,
            level=0,
            team_id=team_id,
            payload=digest_payload(subscription.schedule, period, team_id, content, public_url),
            created_at=now,
            fanned_out_at=now,
        )
    )
    count_alerts_enqueued(session, [subscription.schedule.alert_type])
    delivery_ids: Sequence[str] = await insert_deliveries(
        session, [(subscription.org_id, subscription.id, alert_id)], now
    )
    return delivery_ids[0] if delivery_ids else None
