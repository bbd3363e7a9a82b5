"""Managers' dashboard figures, as SQL aggregates over the obligations open at an instant.

Every figure is counted by the database: Python only touches one row per group (a worker,
a team, a rule, a period). Status at T follows `store.obligations.status_clause`, the SQL
twin of `domain.status`, so these counts agree with what `/v1/obligations` lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    case,
    func,
    literal_column,
    not_,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import Subquery

from service.domain.calendar import Calendar, Duration
from service.domain.rules import Ruleset
from service.store.completions import WHOLE_ORG
from service.store.db import SessionFactory, gather_reads
from service.store.obligations import judged, on_time
from service.store.tables import case_periods, cases, daily_completions, obligations, risk_periods

Interval = Literal["month", "week"]

SortKey = Literal["due", "case", "rule", "worker", "team", "overdue"]
Listed = Literal["overdue", "due_soon"]

MAX_PERIODS = 104
DEFAULT_PERIODS = 12
_ONE_PERIOD: dict[Interval, Duration] = {
    "month": Duration(1, "months"),
    "week": Duration(1, "weeks"),
}


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose obligations a figure covers: an org, optionally one team and one worker."""

    org_id: str
    team_id: str | None = None
    worker_id: str | None = None


@dataclass(frozen=True, slots=True)
class RuleCounts:
    rule_id: str
    rule_name: str
    upcoming: int
    due_soon: int
    overdue: int
    escalated: int


@dataclass(frozen=True, slots=True)
class Summary:
    open_cases: int
    upcoming: int
    due_soon: int
    overdue: int
    at_risk: int
    escalated: int
    by_rule: tuple[RuleCounts, ...]


@dataclass(frozen=True, slots=True)
class Load:
    """One worker's (or team's) open work at an instant."""

    worker_id: str | None
    team_id: str | None
    open_cases: int
    open_obligations: int
    due_soon: int
    overdue: int
    oldest_overdue_working_days: int


@dataclass(frozen=True, slots=True)
class Period:
    """Local days `first_day` up to (not including) `end_day`, and the instants they span."""

    label: str
    first_day: date
    end_day: date
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True, slots=True)
class Timeliness:
    period: str
    rule_id: str
    completed: int
    on_time: int
    late: int
    # Late deadlines split by whether a reason was recorded for them (docs/dashboard.md).
    late_with_reason: int

    @property
    def late_without_reason(self) -> int:
        return self.late - self.late_with_reason

    @property
    def on_time_rate(self) -> float | None:
        return round(self.on_time / self.completed, 4) if self.completed else None


@dataclass(frozen=True, slots=True)
class OverdueRow:
    obligation_id: str
    case_id: str
    rule_id: str
    rule_name: str
    worker_id: str | None
    team_id: str | None
    due_at: datetime
    working_days_overdue: int
    # The code of the reason recorded for the delay, if any (read for the page's rows only).
    delay_reason: str | None = None


@dataclass(frozen=True, slots=True)
class CaseRow:
    """A case in a caseload at an instant, with its next deadline (the open one due first)."""

    case_id: str
    worker_id: str | None
    team_id: str | None
    open_obligations: int
    due_soon: int
    overdue: int
    next_rule_name: str | None
    next_due_at: datetime | None
    next_status: Literal["overdue", "due_soon", "upcoming"] | None


def _in_scope(query: Select[Any], scope: Scope, table: Table = obligations) -> Select[Any]:
    query = query.where(table.c.org_id == scope.org_id)
    if scope.team_id is not None:
        query = query.where(table.c.team_id == scope.team_id)
    if scope.worker_id is not None:
        query = query.where(table.c.worker_id == scope.worker_id)
    return query


def _ordering(sort: SortKey, descending: bool, c: Any) -> list[ColumnElement[Any]]:
    key: ColumnElement[Any] = c[_SORTS[sort]]
    if sort in ("worker", "team"):
        key = func.coalesce(key, "")
    # Working days overdue grow as the due date gets older: the one order, reversed.
    if sort == "overdue":
        descending = not descending
    return [key.desc() if descending else key.asc(), c.due_at, c.id]


async def open_obligations(
    session: AsyncSession,
    scope: Scope,
    at: datetime,
    *columns: str,
    where: Sequence[ColumnElement[bool]] = (),
) -> Subquery:
    """The named columns of the obligations open at `at` (and matching `where`).

    "Open at T" is `closed_at IS NULL OR closed_at > T`. The second half is empty when T is
    the present, and then only the first is read: one index-only scan of the covering
    partial index on open obligations. Otherwise the two are a UNION ALL, which keeps that
    scan for the first half where an OR would rule it out.
    """
    still_open: list[ColumnElement[bool]] = [obligations.c.closed_at.is_(None)]
    closed_later = (
        select(obligations.c.id)
        .where(obligations.c.org_id == scope.org_id, obligations.c.closed_at > at)
        .limit(1)
    )
    if (await session.execute(closed_later)).first() is not None:
        still_open.append(obligations.c.closed_at > at)
    halves = [
        _in_scope(select(*(obligations.c[name] for name in columns)), scope).where(
            obligations.c.opened_at <= at, half, *where
        )
        for half in still_open
    ]
    return (union_all(*halves) if len(halves) > 1 else halves[0]).subquery("open_obligations")


async def open_periods(
    session: AsyncSession, scope: Scope, at: datetime, *columns: str
) -> Subquery:
    """The named columns of the case periods that hold `at`: one row per case open at `at`,
    with the worker and team it was allocated to then.

    Split like `open_obligations`: periods still running are an index-only count of a
    partial index, and periods that ended after `at` are read only when there are any.
    """
    still_open: list[ColumnElement[bool]] = [case_periods.c.ends_at.is_(None)]
    ended_later = (
        select(case_periods.c.case_id)
        .where(case_periods.c.org_id == scope.org_id, case_periods.c.ends_at > at)
        .limit(1)
    )
    if (await session.execute(ended_later)).first() is not None:
        still_open.append(case_periods.c.ends_at > at)
    halves = [
        _in_scope(select(*(case_periods.c[name] for name in columns)), scope, case_periods).where(
            case_periods.c.starts_at <= at, half
        )
        for half in still_open
    ]
    return (union_all(*halves) if len(halves) > 1 else halves[0]).subquery("open_periods")


def _is_overdue(rows: Subquery, at: datetime) -> ColumnElement[bool]:
    return rows.c.due_at < at


def _is_due_soon(rows: Subquery, at: datetime) -> ColumnElement[bool]:
    return and_(rows.c.due_at >= at, rows.c.warn_at <= at)


async def rule_counts(
    session: AsyncSession, scope: Scope, at: datetime, ruleset: Ruleset
) -> list[RuleCounts]:
    """Open obligations by status and rule, the most overdue rules first.

    An open obligation is exactly one of upcoming, due soon and overdue, so upcoming is what
    the other two leave: one aggregate fewer over every open row. Names come from the
    ruleset, which every open obligation was derived with (a rules change re-derives them).
    """
    rows = await open_obligations(
        session, scope, at, "rule_id", "due_at", "warn_at", "first_escalation_at"
    )
    overdue = _is_overdue(rows, at)
    per_rule = await session.execute(
        select(
            rows.c.rule_id,
            func.count().label("open"),
            func.count().filter(_is_due_soon(rows, at)).label("due_soon"),
            func.count().filter(overdue).label("overdue"),
            # Escalation level 1 or more: overdue and past the earliest threshold.
            func.count().filter(and_(overdue, rows.c.first_escalation_at < at)).label("escalated"),
        ).group_by(rows.c.rule_id)
    )
    counts = [
        RuleCounts(
            r.rule_id,
            ruleset.name_of(r.rule_id),
            int(r.open) - int(r.due_soon) - int(r.overdue),
            int(r.due_soon),
            int(r.overdue),
            int(r.escalated),
        )
        for r in per_rule
    ]
    return sorted(counts, key=lambda r: (-r.overdue, -r.due_soon, r.rule_id))


async def summary(factory: SessionFactory, scope: Scope, at: datetime, ruleset: Ruleset) -> Summary:
    """The tiles: open cases, obligations by status, at risk, escalated, and per rule."""
    by_rule, case_count, at_risk = await gather_reads(
        factory,
        lambda session: rule_counts(session, scope, at, ruleset),
        lambda session: open_cases(session, scope, at),
        lambda session: at_risk_count(session, scope, at),
    )
    return summarise(by_rule, case_count, at_risk)


def summarise(by_rule: Sequence[RuleCounts], open_cases: int, at_risk: int) -> Summary:
    return Summary(
        open_cases=open_cases,
        upcoming=sum(r.upcoming for r in by_rule),
        due_soon=sum(r.due_soon for r in by_rule),
        overdue=sum(r.overdue for r in by_rule),
        at_risk=at_risk,
        escalated=sum(r.escalated for r in by_rule),
        by_rule=tuple(by_rule),
    )


async def open_cases(session: AsyncSession, scope: Scope, at: datetime) -> int:
    """The caseload: cases open at `at` (allocated to the scope's worker or team then),
    whether or not a deadline is running on them."""
    rows = await open_periods(session, scope, at, "case_id")
    return int((await session.execute(select(func.count()).select_from(rows))).scalar_one())


async def at_risk_count(session: AsyncSession, scope: Scope, at: datetime) -> int:
    """Open, not yet overdue, inside a risk period: driven from the (few) risk periods."""
    query = (
        select(func.count(func.distinct(obligations.c.id)))
        .select_from(
            risk_periods.join(
                obligations,
                and_(
                    obligations.c.org_id == risk_periods.c.org_id,
                    obligations.c.id == risk_periods.c.obligation_id,
                ),
            )
        )
        .where(
            risk_periods.c.org_id == scope.org_id,
            risk_periods.c.starts_at <= at,
            or_(risk_periods.c.ends_at.is_(None), risk_periods.c.ends_at > at),
            obligations.c.opened_at <= at,
            or_(obligations.c.closed_at.is_(None), obligations.c.closed_at > at),
            obligations.c.due_at >= at,
        )
    )
    return int((await session.execute(_in_scope(query, scope))).scalar_one())


def _load_query(work: Subquery, caseload: Subquery, at: datetime, by: Sequence[str]) -> Select[Any]:
    """Open work (obligations) and caseload (open cases) per worker or team, added up.

    Each side is counted per group on its own, so a worker whose cases have nothing running
    is listed with zeros and nothing is counted twice; the union then has one row per group
    and side. A group's earliest due date is its oldest overdue one whenever it has any
    overdue, which spares a filtered aggregate over every open row.
    """
    zero: ColumnElement[int] = literal_column("0")
    per_group = union_all(
        select(
            *(work.c[name] for name in by),
            zero.label("open_cases"),
            func.count().label("open_obligations"),
            func.count().filter(_is_due_soon(work, at)).label("due_soon"),
            func.count().filter(_is_overdue(work, at)).label("overdue"),
            func.min(work.c.due_at).label("earliest_due_at"),
        ).group_by(*(work.c[name] for name in by)),
        select(
            *(caseload.c[name] for name in by),
            func.count().label("open_cases"),
            zero,
            zero,
            zero,
            null(),
        ).group_by(*(caseload.c[name] for name in by)),
    ).subquery("per_group")
    keys = [per_group.c[name] for name in by]
    overdue_total = func.sum(per_group.c.overdue).label("overdue")
    due_soon = func.sum(per_group.c.due_soon).label("due_soon")
    obligations_total = func.sum(per_group.c.open_obligations).label("open_obligations")
    earliest = func.min(per_group.c.earliest_due_at)
    oldest = case((earliest < at, earliest), else_=None).label("oldest_due_at")
    return (
        select(
            *keys,
            func.sum(per_group.c.open_cases).label("open_cases"),
            obligations_total,
            due_soon,
            overdue_total,
            oldest,
        )
        .group_by(*keys)
        .order_by(
            overdue_total.desc(),
            # The oldest overdue first among equals; groups with nothing overdue have no date.
            case((oldest.is_(None), 1), else_=0),
            oldest,
            due_soon.desc(),
            obligations_total.desc(),
            *(func.coalesce(k, "") for k in keys),
        )
    )


def _overdue_days(calendar: Calendar, due_at: datetime | None, at: datetime) -> int:
    if due_at is None:
        return 0
    return calendar.working_days_between(calendar.local_date(due_at), calendar.local_date(at))


async def loads(
    session: AsyncSession,
    scope: Scope,
    at: datetime,
    calendar: Calendar,
    *,
    by: Literal["worker", "team"],
    limit: int | None = None,
    offset: int = 0,
) -> list[Load]:
    """Open work and caseload per worker (within a team) or per team, the most overdue
    first: every worker or team with an open case or an open deadline."""
    keys = ["worker_id", "team_id"] if by == "worker" else ["team_id"]
    open_rows = await open_obligations(
        session, scope, at, "worker_id", "team_id", "due_at", "warn_at"
    )
    caseload = await open_periods(session, scope, at, "worker_id", "team_id")
    query = _load_query(open_rows, caseload, at, keys).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    rows = (await session.execute(query)).all()
    return [
        Load(
            worker_id=row.worker_id if by == "worker" else None,
            team_id=row.team_id,
            open_cases=int(row.open_cases),
            open_obligations=int(row.open_obligations),
            due_soon=int(row.due_soon),
            overdue=int(row.overdue),
            oldest_overdue_working_days=_overdue_days(calendar, row.oldest_due_at, at),
        )
        for row in rows
    ]


def default_first_day(calendar: Calendar, last: date, interval: Interval) -> date:
    """A day in the first of the twelve periods up to and including the one holding `last`."""
    return calendar.subtract(last, Duration(DEFAULT_PERIODS - 1, _ONE_PERIOD[interval].unit))


def periods(calendar: Calendar, first: date, last: date, interval: Interval) -> list[Period]:
    """Calendar months or ISO weeks in the org's timezone, from the one holding `first`."""
    start = first.replace(day=1) if interval == "month" else first - timedelta(first.weekday())
    result: list[Period] = []
    while start <= last:
        following = calendar.add(start, _ONE_PERIOD[interval])
        if interval == "month":
            label = f"{start:%Y-%m}"
        else:
            year, week, _ = start.isocalendar()
            label = f"{year}-W{week:02d}"
        result.append(
            Period(
                label,
                start,
                following,
                calendar.start_of_day(start),
                calendar.start_of_day(following),
            )
        )
        start = following
    return result


async def timeliness(
    session: AsyncSession,
    scope: Scope,
    at: datetime,
    spans: Sequence[Period],
    calendar: Calendar,
    rule_id: str | None = None,
) -> list[Timeliness]:
    """Completions per period and rule: met on time, or late (met late, or missed then
    cancelled), as they stood at `at`.

    For an organisation or a team, whole days before the day of `at` are read from the
    daily completions rollup and only that day is counted from obligations; a worker's
    completions are few enough to count from obligations alone.
    """
    if not spans:
        return []
    today = calendar.local_date(at)
    counted: dict[tuple[int, str], Counts] = {}
    if scope.worker_id is None:
        counted = await _rolled_up(session, scope, spans, today, rule_id)
        since = max(spans[0].starts_at, calendar.start_of_day(today))
    else:
        since = spans[0].starts_at
    for key, counts in (await _counted(session, scope, spans, since, at, rule_id)).items():
        before = counted.get(key, (0, 0, 0))
        counted[key] = (before[0] + counts[0], before[1] + counts[1], before[2] + counts[2])
    rules = sorted(
        {r for (_, r), counts in counted.items() if counts[0]} | ({rule_id} if rule_id else set())
    )
    items = []
    for i, span in enumerate(spans):
        for rule in rules:
            completed, punctual, with_reason = counted.get((i, rule), (0, 0, 0))
            items.append(
                Timeliness(span.label, rule, completed, punctual, completed - punctual, with_reason)
            )
    return items


Counts = tuple[int, int, int]  # completed, on time, late with a recorded reason


async def _rolled_up(
    session: AsyncSession, scope: Scope, spans: Sequence[Period], before: date, rule_id: str | None
) -> dict[tuple[int, str], Counts]:
    """Completed, on-time and late-with-a-reason counts per (period index, rule), days before
    `before`."""
    index = case(
        *((daily_completions.c.day < span.end_day, i) for i, span in enumerate(spans)),
        else_=len(spans),
    ).label("period")
    query = (
        select(
            index,
            daily_completions.c.rule_id,
            func.sum(daily_completions.c.completed).label("completed"),
            func.sum(daily_completions.c.on_time).label("on_time"),
            func.sum(daily_completions.c.late_with_reason).label("late_with_reason"),
        )
        .where(
            daily_completions.c.org_id == scope.org_id,
            daily_completions.c.team_id == (scope.team_id or WHOLE_ORG),
            daily_completions.c.day >= spans[0].first_day,
            daily_completions.c.day < min(spans[-1].end_day, before),
        )
        .group_by(index, daily_completions.c.rule_id)
    )
    return await _per_period_and_rule(session, query, daily_completions.c.rule_id, rule_id)


async def _counted(
    session: AsyncSession,
    scope: Scope,
    spans: Sequence[Period],
    since: datetime,
    at: datetime,
    rule_id: str | None,
) -> dict[tuple[int, str], Counts]:
    """The same counts from obligations judged from `since` up to `at`.

    Judged rows close when they are met or cancelled, so the range is put on the indexed
    `closed_at`; the
    period of each row is a CASE over the period boundaries, which SQLite and PostgreSQL
    evaluate alike whatever the timezone.
    """
    end = spans[-1].ends_at
    if since > at or since >= end:
        return {}
    index = case(
        *((obligations.c.closed_at < span.ends_at, i) for i, span in enumerate(spans)),
        else_=len(spans),
    ).label("period")
    query = (
        _in_scope(
            select(
                index,
                obligations.c.rule_id,
                func.count().label("completed"),
                func.count().filter(on_time()).label("on_time"),
                func.count()
                .filter(
                    or_(obligations.c.met_at.is_(None), not_(on_time())),
                    obligations.c.delay_reason.is_not(None),
                )
                .label("late_with_reason"),
            ),
            scope,
        )
        .where(
            obligations.c.closed_at >= since,
            obligations.c.closed_at < end,
            obligations.c.closed_at <= at,
            judged(),
        )
        .group_by(index, obligations.c.rule_id)
    )
    return await _per_period_and_rule(session, query, obligations.c.rule_id, rule_id)


async def _per_period_and_rule(
    session: AsyncSession, query: Select[Any], rule: ColumnElement[str], rule_id: str | None
) -> dict[tuple[int, str], Counts]:
    """(period index, rule) -> (completed, on time, late with a reason), for one rule if
    `rule_id` is given."""
    if rule_id is not None:
        query = query.where(rule == rule_id)
    return {
        (int(row.period), row.rule_id): (
            int(row.completed),
            int(row.on_time),
            int(row.late_with_reason),
        )
        for row in await session.execute(query)
    }


_SORTS: dict[SortKey, str] = {
    "due": "due_at",
    "case": "case_id",
    "rule": "rule_name",
    "worker": "worker_id",
    "team": "team_id",
    "overdue": "due_at",
}


async def listed(
    session: AsyncSession,
    scope: Scope,
    at: datetime,
    calendar: Calendar,
    status: Listed,
    *,
    sort: SortKey = "due",
    descending: bool = False,
    limit: int = 50,
    offset: int = 0,
    due_since: datetime | None = None,
) -> tuple[list[OverdueRow], int]:
    """One page of the deadlines overdue (or due soon) at `at`, and how many there are in all;
    with `due_since`, only those due from then on (what fell overdue since a digest).

    Due soon is `warn_at <= at <= due_at`: a range on `due_at` from `at`, which the open
    indexes led by worker, team or due date serve as they serve the overdue range below it.
    """
    columns = ("id", "case_id", "rule_id", "rule_name", "worker_id", "team_id", "due_at")
    where = (
        [obligations.c.due_at < at]
        if status == "overdue"
        else [obligations.c.due_at >= at, obligations.c.warn_at <= at]
    )
    if due_since is not None:
        where.append(obligations.c.due_at >= due_since)
    counted = await open_obligations(session, scope, at, "due_at", where=where)
    total = (await session.execute(select(func.count()).select_from(counted))).scalar_one()
    # Each half could stop after a page in index order, but PostgreSQL then prefers walking
    # every obligation ever due (the full due_at index) over sorting the overdue ones.
    rows = await open_obligations(session, scope, at, *columns, where=where)
    query = select(rows).order_by(*_ordering(sort, descending, rows.c))
    page = (await session.execute(query.limit(limit).offset(offset))).all()
    reasons = await _delay_reasons(session, scope.org_id, [r.id for r in page])
    return (
        [
            OverdueRow(
                obligation_id=r.id,
                case_id=r.case_id,
                rule_id=r.rule_id,
                rule_name=r.rule_name,
                worker_id=r.worker_id,
                team_id=r.team_id,
                due_at=r.due_at,
                working_days_overdue=_overdue_days(calendar, r.due_at, at),
                delay_reason=reasons.get(r.id),
            )
            for r in page
        ],
        int(total),
    )


async def _delay_reasons(session: AsyncSession, org_id: str, ids: list[str]) -> dict[str, str]:
    """The reasons recorded for a page of deadlines, by id: one lookup by key for the page,
    rather than a column the open-work indexes would have to carry for every open row."""
    if not ids:
        return {}
    found = await session.execute(
        select(obligations.c.id, obligations.c.delay_reason).where(
            obligations.c.org_id == org_id,
            obligations.c.id.in_(ids),
            obligations.c.delay_reason.is_not(None),
        )
    )
    return {row.id: row.delay_reason for row in found}


async def caseload(
    session: AsyncSession, scope: Scope, at: datetime, *, limit: int | None, offset: int = 0
) -> list[CaseRow]:
    """A page of the cases open at `at` in the scope (allocated to its worker or team then),
    each with its open deadlines counted and the one due first: the most urgent cases first,
    cases with nothing running last.

    Driven from the (few) open periods of the worker or team; each case's obligations are
    found through the index that names the case, whoever they are allocated to now, and
    ranked per case in SQL, so Python touches one row per case.
    """
    held = await open_periods(session, scope, at, "case_id", "worker_id", "team_id")
    still_open = and_(
        obligations.c.org_id == scope.org_id,
        obligations.c.case_id == held.c.case_id,
        obligations.c.opened_at <= at,
        or_(obligations.c.closed_at.is_(None), obligations.c.closed_at > at),
    )
    per_case = held.c.case_id

    def tally(condition: ColumnElement[bool]) -> Any:
        return func.sum(case((condition, 1), else_=0)).over(partition_by=per_case)

    ranked = (
        select(
            held.c.case_id,
            held.c.worker_id,
            held.c.team_id,
            obligations.c.rule_name,
            obligations.c.due_at,
            obligations.c.warn_at,
            func.count(obligations.c.id).over(partition_by=per_case).label("open_obligations"),
            tally(and_(obligations.c.due_at >= at, obligations.c.warn_at <= at)).label("due_soon"),
            tally(obligations.c.due_at < at).label("overdue"),
            func.row_number()
            .over(partition_by=per_case, order_by=(obligations.c.due_at, obligations.c.id))
            .label("rank"),
        )
        .select_from(held.outerjoin(obligations, still_open))
        .subquery("ranked")
    )
    status = case(
        (_is_overdue(ranked, at), "overdue"),
        (_is_due_soon(ranked, at), "due_soon"),
        (ranked.c.due_at.is_not(None), "upcoming"),
        else_=null(),
    ).label("status")
    query = (
        select(ranked, status)
        .where(ranked.c.rank == 1)
        .order_by(case((ranked.c.due_at.is_(None), 1), else_=0), ranked.c.due_at, ranked.c.case_id)
        .limit(limit)
        .offset(offset)
    )
    return [
        CaseRow(
            case_id=r.case_id,
            worker_id=r.worker_id,
            team_id=r.team_id,
            open_obligations=int(r.open_obligations),
            due_soon=int(r.due_soon or 0),
            overdue=int(r.overdue or 0),
            next_rule_name=r.rule_name,
            next_due_at=r.due_at,
            next_status=r.status,
        )
        for r in await session.execute(query)
    ]


async def team_ids(session: AsyncSession, org_id: str) -> list[str]:
    """Teams with cases, for the dashboard's filter."""
    rows = await session.execute(
        select(cases.c.team_id)
        .where(cases.c.org_id == org_id, cases.c.team_id.is_not(None))
        .group_by(cases.c.team_id)
        .order_by(cases.c.team_id)
    )
    return [r for r in rows.scalars() if r is not None]
