"""Reading obligations: status at an instant as SQL, and rows back into domain objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.derive import DelayReason, Extension, Obligation, Pause
from service.domain.status import STATUSES, Status
from service.store import keyset
from service.store.tables import obligations


def open_at(at: datetime) -> ColumnElement[bool]:
    """Opened by `at` and neither met nor cancelled by then."""
    return and_(
        obligations.c.opened_at <= at,
        or_(obligations.c.closed_at.is_(None), obligations.c.closed_at > at),
    )


def on_time() -> ColumnElement[bool]:
    """Met by the date timeliness counts against: the rule's, whatever extension was agreed
    (the SQL twin of `Obligation.timeliness_due_at`)."""
    return obligations.c.met_at <= func.coalesce(
        obligations.c.original_due_at, obligations.c.due_at
    )


def judged() -> ColumnElement[bool]:
    """Counted in timeliness: met, or cancelled after it fell due (the SQL twin of
    `domain.status.missed_then_cancelled`, and the predicate of the index that serves it)."""
    return or_(obligations.c.met_at.is_not(None), obligations.c.cancelled_at > obligations.c.due_at)


def status_clause(status: Status, at: datetime) -> ColumnElement[bool]:
    """The SQL twin of domain.status.status_at; tests hold the two to the same answers."""
    exists = obligations.c.opened_at <= at
    if status == "cancelled":
        return and_(
            exists, obligations.c.cancelled_at.is_not(None), obligations.c.cancelled_at <= at
        )
    if status in ("met", "met_late"):
        on_time = (
            obligations.c.met_at <= obligations.c.due_at
            if status == "met"
            else obligations.c.met_at > obligations.c.due_at
        )
        return and_(exists, obligations.c.met_at.is_not(None), obligations.c.met_at <= at, on_time)
    if status == "overdue":
        return and_(open_at(at), obligations.c.due_at < at)
    warned = and_(obligations.c.warn_at.is_not(None), obligations.c.warn_at <= at)
    if status == "due_soon":
        return and_(open_at(at), obligations.c.due_at >= at, warned)
    if status == "upcoming":
        return and_(
            open_at(at),
            obligations.c.due_at >= at,
            or_(obligations.c.warn_at.is_(None), obligations.c.warn_at > at),
        )
    return false()


def statuses_clause(statuses: Sequence[Status], at: datetime) -> ColumnElement[bool]:
    return or_(*(status_clause(s, at) for s in statuses))


def parse_statuses(text: str) -> list[Status] | None:
    """A comma-separated status filter, or None when any part is not a status."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or any(p not in STATUSES for p in parts):
        return None
    return [s for s in STATUSES if s in parts]


@dataclass(frozen=True, slots=True)
class StoredObligation:
    """A stored obligation with what the domain needs and what the API shows beside it."""

    obligation: Obligation
    rule_name: str
    worker_id: str | None
    team_id: str | None


def _instant(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def clock_column(obligation: Obligation) -> dict[str, Any] | None:
    """The `clock` column: what was said of the deadline's clock, None when nothing was."""
    reason, extension = obligation.delay_reason, obligation.extension
    if reason is None and extension is None and not obligation.pauses:
        return None
    return {
        "reason": None
        if reason is None
        else [
            reason.code,
            reason.label,
            reason.note,
            reason.event_id,
            reason.recorded_at.isoformat(),
        ],
        "extension": None
        if extension is None
        else [extension.event_id, extension.agreed_at.isoformat(), extension.authorised_by],
        "pauses": [
            [p.started_at.isoformat(), p.ends_at.isoformat(), p.started_by, p.ended_by]
            for p in obligation.pauses
        ],
    }


def _clock_fields(clock: dict[str, Any] | None) -> dict[str, Any]:
    """The Obligation fields a `clock` column holds."""
    if clock is None:
        return {}
    reason, extension = clock["reason"], clock["extension"]
    return {
        "delay_reason": None
        if reason is None
        else DelayReason(
            reason[0], reason[1], reason[2], reason[3], datetime.fromisoformat(reason[4])
        ),
        "extension": None
        if extension is None
        else Extension(extension[0], datetime.fromisoformat(extension[1]), extension[2]),
        "pauses": tuple(
            Pause(datetime.fromisoformat(start), datetime.fromisoformat(end), by, ended_by)
            for start, end, by, ended_by in clock["pauses"]
        ),
    }


def from_row(row: Any) -> StoredObligation:
    periods = tuple(
        (datetime.fromisoformat(start), _instant(end)) for start, end in row.at_risk_periods
    )
    obligation = Obligation(
        id=row.id,
        case_id=row.case_id,
        rule_id=row.rule_id,
        sequence=row.sequence,
        opened_at=row.opened_at,
        due_at=row.due_at,
        opened_by_event=row.opened_by_event,
        warn_at=row.warn_at,
        escalate_at=tuple(datetime.fromisoformat(x) for x in row.escalate_at),
        met_at=row.met_at,
        met_by_event=row.met_by_event,
        cancelled_at=row.cancelled_at,
        cancelled_by_event=row.cancelled_by_event,
        met_at_latest=row.met_at_latest,
        at_risk_periods=periods,
        original_due_at=row.original_due_at,
        **_clock_fields(row.clock),
    )
    return StoredObligation(obligation, row.rule_name, row.worker_id, row.team_id)


async def find_obligations(
    session: AsyncSession,
    org_id: str,
    *,
    at: datetime,
    statuses: Sequence[Status] | None,
    rule_id: str | None,
    case_id: str | None,
    team_id: str | None,
    worker_id: str | None,
    due_before: datetime | None,
    limit: int,
    after: tuple[datetime, str] | None,
) -> list[StoredObligation]:
    """Obligations opened by `at`, by due date, matching every filter given (`statuses` as
    they stood at `at`). `after` is the (due_at, id) of the last one seen; `limit` + 1 of
    them, so the caller knows whether there is a next page."""
    query = select(obligations).where(obligations.c.org_id == org_id, obligations.c.opened_at <= at)
    if statuses is not None:
        query = query.where(statuses_clause(statuses, at))
    for column, value in (
        ("rule_id", rule_id),
        ("case_id", case_id),
        ("team_id", team_id),
        ("worker_id", worker_id),
    ):
        if value is not None:
            query = query.where(obligations.c[column] == value)
    if due_before is not None:
        query = query.where(obligations.c.due_at < due_before)
    if after is not None:
        query = query.where(keyset.after(obligations.c.due_at, obligations.c.id, after))
    rows = await session.execute(
        query.order_by(obligations.c.due_at, obligations.c.id).limit(limit + 1)
    )
    return [from_row(row) for row in rows]


async def overdue_obligations(
    session: AsyncSession, org_id: str, at: datetime
) -> list[StoredObligation]:
    """Every obligation of the organisation overdue at `at`."""
    rows = await session.execute(
        select(obligations).where(obligations.c.org_id == org_id, status_clause("overdue", at))
    )
    return [from_row(row) for row in rows]


async def get_obligation(
    session: AsyncSession, org_id: str, obligation_id: str, at: datetime
) -> StoredObligation | None:
    """The organisation's obligation with this id, or None when it has none or it had not
    opened by `at` (as the list leaves out obligations not yet opened)."""
    row = (
        await session.execute(
            select(obligations).where(
                obligations.c.org_id == org_id,
                obligations.c.id == obligation_id,
                obligations.c.opened_at <= at,
            )
        )
    ).one_or_none()
    return from_row(row) if row is not None else None
