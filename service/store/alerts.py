"""The alerts outbox: record what obligations owe, in the transaction of the state they report.

`alerts` is unique on (org, obligation, type, level) and inserts skip what exists, so
however many writers (ingest, rules changes, the sweep on every replica) find the same state,
it is recorded once, ever. Obligation ids are stable across re-derivations, so a voided and
re-posted event cannot raise its alerts again either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.alerts import (
    CompletedCount,
    CompletedType,
    alert_payload,
    completed_payload,
    owed_alerts,
)
from service.domain.derive import Obligation
from service.domain.rules import Ruleset
from service.metrics import count_alerts_enqueued
from service.store.db import BulkInsert
from service.store.ids import sortable_id
from service.store.obligations import status_clause
from service.store.retention import PRUNED_PAYLOAD
from service.store.tables import alerts, obligations

MAX_MOVE_GROUPS = 20


@dataclass(frozen=True, slots=True)
class Subject:
    """An obligation with what its alerts show beside it: the rule's name and the allocation."""

    obligation: Obligation
    rule_name: str
    worker_id: str | None
    team_id: str | None


def owed_rows(
    org_id: str,
    ruleset: Ruleset,
    subjects: Iterable[Subject],
    now: datetime,
    *,
    settles: bool,
    silenced: bool = False,
) -> list[dict[str, Any]]:
    """Outbox rows for every alert the subjects owe at `now`, payloads frozen as of `now`.

    `settles` marks alerts raised by an event write: their first attempt waits the settle
    period, so that the rest of a history posted in quick requests can withdraw them.
    `silenced` (a backfill) records them as owed but never fans them out: states reached
    before the backfill was posted are never alerted, now or by a later write. Nothing ever
    sends or reads such an alert's payload, so it is stored as retention leaves an old one
    (store/retention.py): only the key, which is what keeps the alert from being raised.
    """
    rows: list[dict[str, Any]] = []
    for subject in subjects:
        ob = subject.obligation
        owed = owed_alerts(ob, now)
        if not owed:
            continue
        rule = ruleset.rule(ob.rule_id)
        for alert in owed:
            payload = (
                PRUNED_PAYLOAD
                if silenced
                else alert_payload(
                    alert,
                    ob,
                    rule=rule,
                    rule_name=subject.rule_name,
                    worker_id=subject.worker_id,
                    team_id=subject.team_id,
                    calendar=ruleset.calendar,
                    at=now,
                )
            )
            rows.append(
                {
                    "id": sortable_id("al_"),
                    "org_id": org_id,
                    "obligation_id": ob.id,
                    "type": alert.type,
                    "level": alert.level,
                    "case_id": ob.case_id,
                    "rule_id": ob.rule_id,
                    "team_id": subject.team_id,
                    "worker_id": subject.worker_id,
                    "payload": payload,
                    "created_at": now,
                    "fanned_out_at": now if silenced else None,
                    "settles": settles,
                }
            )
    return rows


_INSERT_ALERTS = BulkInsert(
    alerts,
    [c.name for c in alerts.columns],
    lambda insert, _dialect: insert.on_conflict_do_nothing(
        index_elements=["org_id", "obligation_id", "type", "level"]
    ).returning(alerts.c.type),
)


async def insert_alerts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert outbox rows, skipping any (org, obligation, type, level) already recorded."""
    if not rows:
        return 0
    inserted = [row.type for row in await _INSERT_ALERTS.execute(session, rows)]
    count_alerts_enqueued(session, inserted)
    return len(inserted)


async def enqueue_owed(
    session: AsyncSession,
    org_id: str,
    ruleset: Ruleset,
    subjects: Iterable[Subject],
    now: datetime,
    *,
    settles: bool,
    silenced: bool = False,
) -> int:
    """Record the alerts the subjects owe at `now`; how many were new."""
    rows = owed_rows(org_id, ruleset, subjects, now, settles=settles, silenced=silenced)
    return await insert_alerts(session, rows)


async def enqueue_completed(
    session: AsyncSession, org_id: str, alert_type: CompletedType, now: datetime
) -> None:
    """The one alert a backfill or import raises: what is now overdue, due soon and
    escalated, by team and rule (counted as the dashboard summary counts them)."""
    overdue = status_clause("overdue", now)
    due_soon = status_clause("due_soon", now)
    found = await session.execute(
        select(
            obligations.c.team_id,
            obligations.c.rule_id,
            func.count().filter(overdue).label("overdue"),
            func.count().filter(due_soon).label("due_soon"),
            func.count()
            .filter(and_(overdue, obligations.c.first_escalation_at < now))
            .label("escalated"),
        )
        .where(obligations.c.org_id == org_id, or_(overdue, due_soon))
        .group_by(obligations.c.team_id, obligations.c.rule_id)
        .order_by(obligations.c.team_id, obligations.c.rule_id)
    )
    counts = [
        CompletedCount(r.team_id, r.rule_id, int(r.overdue), int(r.due_soon), int(r.escalated))
        for r in found
    ]
    await session.execute(
        alerts.insert().values(
            id=sortable_id("al_"),
            org_id=org_id,
            obligation_id=None,
            type=alert_type,
            level=0,
            payload=completed_payload(alert_type, counts, now),
            created_at=now,
            fanned_out_at=None,
            settles=False,
        )
    )
    count_alerts_enqueued(session, [alert_type])


async def claim_due_checks(session: AsyncSession, now: datetime, limit: int) -> Sequence[Any]:
    """Lock up to `limit` obligations whose check time has come, oldest first.

    `SKIP LOCKED` lets replicas sweep side by side, each taking rows the others are not
    holding; a writer re-deriving one of these cases waits for this transaction and then
    writes its own check time and alerts. (SQLite has one writer at a time and no row locks.)
    """
    return (
        await session.execute(
            select(obligations)
            .where(obligations.c.next_check_at <= now)
            .order_by(obligations.c.next_check_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()


async def move_checks(
    session: AsyncSession, moves: Sequence[tuple[str, str, datetime | None]]
) -> None:
    """Set (org_id, obligation_id)'s next check time.

    Obligations due together move to the same instant (the end of a shared due day, or
    nothing more to check), so a few UPDATEs of many rows usually beat one per row.
    """
    if not moves:
        return
    groups: dict[tuple[str, datetime | None], list[str]] = {}
    for org_id, ob_id, at in moves:
        groups.setdefault((org_id, at), []).append(ob_id)
    if len(groups) <= MAX_MOVE_GROUPS:
        for (org_id, at), ids in groups.items():
            await session.execute(
                update(obligations)
                .where(obligations.c.org_id == org_id, obligations.c.id.in_(ids))
                .values(next_check_at=at)
            )
        return
    await session.execute(
        update(obligations)
        .where(obligations.c.org_id == bindparam("b_org"), obligations.c.id == bindparam("b_id"))
        .values(next_check_at=bindparam("next")),
        [{"b_org": org_id, "b_id": ob_id, "next": at} for org_id, ob_id, at in moves],
    )
