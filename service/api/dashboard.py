"""Dashboard widgets as JSON: the figures behind the managers' dashboard."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from service.api.csv_export import CSV_RESPONSE, FormatQuery, csv_of, wants_csv
from service.api.deps import ClockDep, Reader, SessionDep
from service.api.pagination import Cursor, Limit, Page, bad_cursor, decode_cursor, encode_cursor
from service.api.problems import Problem
from service.api.times import AsOfQuery, parse_query_instant
from service.domain.calendar import Calendar
from service.domain.events import parse_day_or_instant
from service.store import dashboard_reads
from service.store.orgs import ruleset_of

router = APIRouter(prefix="/v1/dashboard", tags=["dashboard"])

TeamQuery = Annotated[str | None, Query(description="Only this team's cases.")]
WorkerQuery = Annotated[str | None, Query(description="Only this worker's cases.")]


class ObligationCounts(BaseModel):
    upcoming: int
    due_soon: int
    overdue: int
    at_risk: int
    escalated: int


class RuleOut(BaseModel):
    rule_id: str
    rule_name: str
    due_soon: int
    overdue: int


class SummaryOut(BaseModel):
    as_of: datetime
    open_cases: int
    obligations: ObligationCounts
    by_rule: list[RuleOut]


class WorkerOut(BaseModel):
    worker_id: str | None
    team_id: str | None
    open_cases: int
    open_obligations: int
    due_soon: int
    overdue: int
    oldest_overdue_working_days: int


class TeamOut(BaseModel):
    team_id: str | None
    open_cases: int
    open_obligations: int
    due_soon: int
    overdue: int
    oldest_overdue_working_days: int


class TimelinessOut(BaseModel):
    period: str
    rule_id: str
    completed: int
    on_time: int
    late: int
    late_with_reason: int = Field(description="Late, with a delay reason recorded for it.")
    late_without_reason: int = Field(description="Late, with no reason recorded.")
    on_time_rate: float | None


def _invalid(parameter: str, detail: str) -> Problem:
    return Problem(
        422,
        f"'{parameter}' {detail}.",
        slug="validation",
        errors=[{"parameter": parameter, "detail": detail}],
    )


def _instant_and_offset(
    as_of: str | None, cursor: str | None, calendar: Calendar, now: datetime
) -> tuple[datetime, int]:
    """Pages of a ranking are cut at one instant: the cursor carries it, with the offset."""
    at = parse_query_instant(as_of, "as_of", calendar)
    if cursor is None:
        return at or now, 0
    pinned, offset = decode_cursor(cursor, 2)
    instant = parse_day_or_instant(pinned)
    if not isinstance(instant, datetime) or not isinstance(offset, int) or offset < 0:
        raise bad_cursor()
    if at is not None and at != instant:
        raise _invalid("cursor", "was made for another as_of")
    return instant, offset


def _next_cursor(at: datetime, offset: int, got: int, limit: int) -> str | None:
    return encode_cursor(at.isoformat(), offset + limit) if got > limit else None


@router.get("/summary", response_model=SummaryOut)
async def summary(
    principal: Reader,
    request: Request,
    clock: ClockDep,
    as_of: AsOfQuery = None,
    team_id: TeamQuery = None,
    worker_id: WorkerQuery = None,
) -> SummaryOut:
    """Open cases and open obligations by status at `as_of` (default now), and per rule."""
    ruleset = ruleset_of(principal)
    at = parse_query_instant(as_of, "as_of", ruleset.calendar) or clock()
    scope = dashboard_reads.Scope(principal.org_id, team_id, worker_id)
    found = await dashboard_reads.summary(
        request.app.state.read_session_factory, scope, at, ruleset
    )
    return SummaryOut(
        as_of=at,
        open_cases=found.open_cases,
        obligations=ObligationCounts(
            upcoming=found.upcoming,
            due_soon=found.due_soon,
            overdue=found.overdue,
            at_risk=found.at_risk,
            escalated=found.escalated,
        ),
        by_rule=[
            RuleOut(
                rule_id=r.rule_id, rule_name=r.rule_name, due_soon=r.due_soon, overdue=r.overdue
            )
            for r in found.by_rule
        ],
    )


@router.get("/workers", response_model=Page[WorkerOut], responses=CSV_RESPONSE)
async def workers(
    request: Request,
    principal: Reader,
    session: SessionDep,
    clock: ClockDep,
    as_of: AsOfQuery = None,
    team_id: TeamQuery = None,
    worker_id: WorkerQuery = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: FormatQuery = None,
) -> Page[WorkerOut] | Response:
    """Open work per worker, most overdue first: who is drowning. As CSV, every worker in
    one file (`limit` and `cursor` apply to the JSON pages only)."""
    calendar = ruleset_of(principal).calendar
    at, offset = _instant_and_offset(as_of, cursor, calendar, clock())
    scope = dashboard_reads.Scope(principal.org_id, team_id, worker_id)
    if wants_csv(request, format):
        every = await dashboard_reads.loads(session, scope, at, calendar, by="worker")
        return csv_of("workers.csv", WorkerOut, every)
    found = await dashboard_reads.loads(
        session, scope, at, calendar, by="worker", limit=limit + 1, offset=offset
    )
    items = [WorkerOut.model_validate(load, from_attributes=True) for load in found[:limit]]
    return Page[WorkerOut](items=items, next_cursor=_next_cursor(at, offset, len(found), limit))


@router.get("/teams", response_model=Page[TeamOut], responses=CSV_RESPONSE)
async def teams(
    request: Request,
    principal: Reader,
    session: SessionDep,
    clock: ClockDep,
    as_of: AsOfQuery = None,
    team_id: TeamQuery = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: FormatQuery = None,
) -> Page[TeamOut] | Response:
    """Open work per team, most overdue first. As CSV, every team in one file."""
    calendar = ruleset_of(principal).calendar
    at, offset = _instant_and_offset(as_of, cursor, calendar, clock())
    scope = dashboard_reads.Scope(principal.org_id, team_id)
    if wants_csv(request, format):
        every = await dashboard_reads.loads(session, scope, at, calendar, by="team")
        return csv_of("teams.csv", TeamOut, every)
    found = await dashboard_reads.loads(
        session, scope, at, calendar, by="team", limit=limit + 1, offset=offset
    )
    items = [TeamOut.model_validate(load, from_attributes=True) for load in found[:limit]]
    return Page[TeamOut](items=items, next_cursor=_next_cursor(at, offset, len(found), limit))


def _day(value: str | None, name: str, calendar: Calendar) -> date | None:
    if value is None:
        return None
    parsed = parse_day_or_instant(value)
    if parsed is None:
        raise _invalid(name, "must be a date (2026-11-02) or RFC 3339 with an offset")
    return calendar.local_date(parsed) if isinstance(parsed, datetime) else parsed


def timeliness_periods(
    calendar: Calendar,
    at: datetime,
    first: date | None,
    last: date | None,
    interval: dashboard_reads.Interval,
) -> list[dashboard_reads.Period]:
    last = last or calendar.local_date(at)
    first = first or dashboard_reads.default_first_day(calendar, last, interval)
    if first > last:
        raise _invalid("from", "must not be after 'to'")
    spans = dashboard_reads.periods(calendar, first, last, interval)
    if len(spans) > dashboard_reads.MAX_PERIODS:
        raise _invalid(
            "from", f"gives more than {dashboard_reads.MAX_PERIODS} periods; narrow the range"
        )
    return spans


@router.get("/timeliness", response_model=Page[TimelinessOut], responses=CSV_RESPONSE)
async def timeliness(
    request: Request,
    principal: Reader,
    session: SessionDep,
    clock: ClockDep,
    rule_id: str | None = None,
    from_: Annotated[
        str | None, Query(alias="from", description="First day (default: 12 periods back).")
    ] = None,
    to: Annotated[str | None, Query(description="Last day (default: the day of as_of).")] = None,
    interval: Literal["month", "week"] = "month",
    as_of: AsOfQuery = None,
    team_id: TeamQuery = None,
    worker_id: WorkerQuery = None,
    format: FormatQuery = None,
) -> Page[TimelinessOut] | Response:
    """Deadlines met on time or late per period (local months or ISO weeks) and rule.

    Every period in the range is listed for every rule with a completion in it, so a
    period without completions shows zeros and an on_time_rate of null.
    """
    calendar = ruleset_of(principal).calendar
    at = parse_query_instant(as_of, "as_of", calendar) or clock()
    spans = timeliness_periods(
        calendar, at, _day(from_, "from", calendar), _day(to, "to", calendar), interval
    )
    scope = dashboard_reads.Scope(principal.org_id, team_id, worker_id)
    found = await dashboard_reads.timeliness(session, scope, at, spans, calendar, rule_id)
    items = [
        TimelinessOut(
            period=row.period,
            rule_id=row.rule_id,
            completed=row.completed,
            on_time=row.on_time,
            late=row.late,
            late_with_reason=row.late_with_reason,
            late_without_reason=row.late_without_reason,
            on_time_rate=row.on_time_rate,
        )
        for row in found
    ]
    if wants_csv(request, format):
        return csv_of("timeliness.csv", TimelinessOut, items)
    return Page[TimelinessOut](items=items, next_cursor=None)
