"""Obligations out: filtered, evaluated at any instant, paged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from service.api.csv_export import (
    CSV_RESPONSE,
    FormatQuery,
    columns_of,
    csv_response,
    row_of,
    wants_csv,
)
from service.api.deps import ClockDep, Reader, SessionDep
from service.api.pagination import Cursor, Limit, Page, decode_instant_cursor, encode_cursor
from service.api.problems import Problem
from service.api.times import AsOfQuery, day_or_instant_query, parse_query_instant
from service.domain.alerts import clock_snapshot
from service.domain.calendar import CALENDAR_DATA_VERSION, Calendar
from service.domain.explain import explain
from service.domain.rules import Ruleset
from service.domain.status import (
    STATUSES,
    Status,
    escalation_level,
    is_at_risk,
    is_missed,
    status_at,
    working_days_overdue,
)
from service.store.db import SessionFactory
from service.store.events import get_event
from service.store.obligations import (
    StoredObligation,
    find_obligations,
    get_obligation,
    parse_statuses,
)
from service.store.orgs import ruleset_of

router = APIRouter(prefix="/v1/obligations", tags=["obligations"])
_ONE_STATUS = f"({'|'.join(STATUSES)})"
# What parse_statuses takes: spaces around a status and empty items are ignored.
_STATUS_LIST = rf"^[\s,]*{_ONE_STATUS}(\s*,[\s,]*{_ONE_STATUS})*[\s,]*$"
StatusQuery = Annotated[
    str | None,
    Query(
        description=f"One or more of {', '.join(STATUSES)}, comma-separated.",
        json_schema_extra={"pattern": _STATUS_LIST},
    ),
]
DueBeforeQuery = Annotated[
    str | None, day_or_instant_query("Only obligations due before this instant.")
]


class ObligationOut(BaseModel):
    id: str
    case_id: str
    rule_id: str
    rule_name: str
    status: Status
    # True beside `cancelled` when the deadline had passed unmet before it was cancelled.
    missed: bool
    opened_at: datetime
    due_at: datetime
    met_at: datetime | None
    # True when `met_at` is only the latest it can have been met (a snapshot's latest date).
    met_at_latest: bool
    cancelled_at: datetime | None
    worker_id: str | None
    team_id: str | None
    sequence: int
    working_days_overdue: int
    escalation_level: int
    at_risk: bool
    opened_by_event: str
    met_by_event: str | None
    original_due_at: datetime | None = Field(
        description="With an agreed extension, the rule's due date, which timeliness counts "
        "against; `due_at` is then the agreed date, which status and alerts follow."
    )
    delay_reason: str | None = Field(description="The code of the reason recorded, if any.")
    delay_reason_label: str | None
    delay_note: str | None
    delay_reason_event: str | None = Field(description="The event that recorded the reason.")
    extension_authorised_by: str | None
    extension_event: str | None = Field(description="The event that agreed the extension.")
    paused: bool = Field(description="Whether the deadline's clock stood still at `as_of`.")


class PauseOut(BaseModel):
    started_at: datetime
    ends_at: datetime = Field(description="The resume, or the end of the rule's maximum pause.")
    started_by: str
    ended_by: str | None = Field(description="The resume event; null when it ended by itself.")


class RuleRef(BaseModel):
    id: str
    name: str
    # None when the rule is no longer in the active ruleset.
    source: str | None


class OpeningEvent(BaseModel):
    id: str
    type: str
    occurred_at: datetime


class SkippedDay(BaseModel):
    day: date
    name: str = Field(description="The bank holiday's published name, or `closure`.")


class ClosedBy(BaseModel):
    event: str
    at: datetime


class RulesetRef(BaseModel):
    id: str
    version: str = Field(description="A digest of the ruleset, as `GET /v1/rules` gives it.")


class CalendarRef(BaseModel):
    region: str
    timezone: str
    closures: list[date]
    holiday_data: str = Field(description="The bank-holiday data, e.g. `holidays 0.109`.")


class Explanation(BaseModel):
    """Why the obligation is due when it is: docs/rules.md, Explanations."""

    text: str = Field(description="One sentence a person can check by hand.")
    rule: RuleRef
    opened_by: OpeningEvent
    counted_from: date | None = Field(
        description="The local day the duration counts from; null when none was counted."
    )
    duration: str | None
    working_days_counted: int | None
    weekend_days_skipped: int
    days_off_skipped: list[SkippedDay]
    due_day: date
    due_local: datetime = Field(
        description="The end of the due day in the organisation's timezone, with its offset."
    )
    due_at: datetime
    warn_at: datetime | None
    escalate_at: list[datetime]
    met: ClosedBy | None
    cancelled: ClosedBy | None
    ruleset: RulesetRef
    calendar: CalendarRef


class ObligationDetail(ObligationOut):
    explanation: Explanation
    pauses: list[PauseOut]


def present(stored: StoredObligation, at: datetime, calendar: Calendar) -> ObligationOut:
    """An obligation as the API shows it at `at`: met and cancelled times once they happened."""
    ob = stored.obligation
    met = ob.met_at is not None and ob.met_at <= at
    cancelled = ob.cancelled_at is not None and ob.cancelled_at <= at
    return ObligationOut(
        id=ob.id,
        case_id=ob.case_id,
        rule_id=ob.rule_id,
        rule_name=stored.rule_name,
        status=status_at(ob, at),
        missed=is_missed(ob, at),
        opened_at=ob.opened_at,
        due_at=ob.due_at,
        met_at=ob.met_at if met else None,
        met_at_latest=met and ob.met_at_latest,
        cancelled_at=ob.cancelled_at if cancelled else None,
        worker_id=stored.worker_id,
        team_id=stored.team_id,
        sequence=ob.sequence,
        working_days_overdue=working_days_overdue(ob, at, calendar),
        escalation_level=escalation_level(ob, at),
        at_risk=is_at_risk(ob, at),
        opened_by_event=ob.opened_by_event,
        met_by_event=ob.met_by_event if met else None,
        **clock_snapshot(ob, at),
    )


EXPORT_PAGE = 1000


async def _exported(
    first: list[StoredObligation],
    factory: SessionFactory,
    org_id: str,
    at: datetime,
    calendar: Calendar,
    filters: dict[str, Any],
) -> AsyncIterator[list[object]]:
    """Every matching obligation as a CSV row, a page at a time, each page read in a short
    transaction of its own (a long export holds no snapshot open for its whole length)."""
    columns = columns_of(ObligationOut)
    found = first
    while True:
        for stored in found[:EXPORT_PAGE]:
            yield row_of(present(stored, at, calendar), columns)
        if len(found) <= EXPORT_PAGE:
            return
        last = found[EXPORT_PAGE - 1].obligation
        async with factory() as session, session.begin():
            found = await find_obligations(
                session, org_id, at=at, limit=EXPORT_PAGE, after=(last.due_at, last.id), **filters
            )


async def obligations_csv(
    session: AsyncSession,
    factory: SessionFactory,
    org_id: str,
    at: datetime,
    calendar: Calendar,
    filters: dict[str, Any],
) -> StreamingResponse:
    """Every obligation matching `filters` (find_obligations' keywords) as a CSV download.

    The first page is read in `session`, so a fault is answered as one before the file
    starts; the rest are read from `factory` as the file is sent.
    """
    first = await find_obligations(session, org_id, at=at, limit=EXPORT_PAGE, after=None, **filters)
    rows = _exported(first, factory, org_id, at, calendar, filters)
    return csv_response("obligations.csv", columns_of(ObligationOut), rows)


@router.get("", response_model=Page[ObligationOut], responses=CSV_RESPONSE)
async def list_obligations(
    request: Request,
    principal: Reader,
    session: SessionDep,
    clock: ClockDep,
    status: StatusQuery = None,
    rule_id: str | None = None,
    case_id: str | None = None,
    team_id: str | None = None,
    worker_id: str | None = None,
    due_before: DueBeforeQuery = None,
    as_of: AsOfQuery = None,
    limit: Limit = 100,
    cursor: Cursor = None,
    format: FormatQuery = None,
) -> Page[ObligationOut] | Response:
    """Obligations by due date, as they stood at `as_of` (default now).

    `status` takes one or more of upcoming, due_soon, overdue, met, met_late, cancelled,
    comma-separated. As CSV (`format=csv` or `Accept: text/csv`) every matching obligation
    is in one streamed file, with the list's fields as columns; `limit` and `cursor` apply
    to the JSON pages only.
    """
    calendar = ruleset_of(principal).calendar
    at = parse_query_instant(as_of, "as_of", calendar) or clock()
    statuses = None
    if status is not None:
        statuses = parse_statuses(status)
        if statuses is None:
            raise Problem(
                422,
                "Unknown status.",
                slug="validation",
                errors=[
                    {
                        "parameter": "status",
                        "detail": "use upcoming, due_soon, overdue, met, "
                        "met_late or cancelled, comma-separated",
                    }
                ],
            )
    filters: dict[str, Any] = {
        "statuses": statuses,
        "rule_id": rule_id,
        "case_id": case_id,
        "team_id": team_id,
        "worker_id": worker_id,
        "due_before": parse_query_instant(due_before, "due_before", calendar),
    }
    if wants_csv(request, format):
        factory = request.app.state.read_session_factory
        return await obligations_csv(session, factory, principal.org_id, at, calendar, filters)
    after = decode_instant_cursor(cursor) if cursor is not None else None
    found = await find_obligations(
        session, principal.org_id, at=at, limit=limit, after=after, **filters
    )
    items = [present(stored, at, calendar) for stored in found[:limit]]
    next_cursor = None
    if len(found) > limit:
        next_cursor = encode_cursor(items[-1].due_at.isoformat(), items[-1].id)
    return Page[ObligationOut](items=items, next_cursor=next_cursor)


def _closed_by(event: str | None, instant: datetime | None, at: datetime) -> ClosedBy | None:
    if event is None or instant is None or instant > at:
        return None
    return ClosedBy(event=event, at=instant)


def explained(
    stored: StoredObligation, opening: Any, ruleset: Ruleset, at: datetime
) -> ObligationDetail:
    """The obligation as the list shows it at `at`, with how its deadline was worked out under
    the ruleset in force; `opening` is the row of the event that opened it."""
    ob = stored.obligation
    rule = ruleset.rule(ob.rule_id)
    calendar = ruleset.calendar
    found = explain(ob, rule, calendar)
    explanation = Explanation(
        text=found.sentence,
        rule=RuleRef(
            id=ob.rule_id, name=stored.rule_name, source=rule.source if rule is not None else None
        ),
        opened_by=OpeningEvent(id=opening.id, type=opening.type, occurred_at=opening.occurred_at),
        counted_from=found.counted_from,
        duration=found.duration,
        working_days_counted=found.working_days_counted,
        weekend_days_skipped=found.weekend_days_skipped,
        days_off_skipped=[SkippedDay(day=d.day, name=d.name) for d in found.days_off_skipped],
        due_day=found.due_day,
        due_local=found.due_local,
        due_at=found.due_at,
        warn_at=ob.warn_at,
        escalate_at=list(ob.escalate_at),
        met=_closed_by(ob.met_by_event, ob.met_at, at),
        cancelled=_closed_by(ob.cancelled_by_event, ob.cancelled_at, at),
        ruleset=RulesetRef(id=ruleset.id, version=ruleset.version()),
        calendar=CalendarRef(
            region=calendar.region,
            timezone=calendar.timezone.key,
            closures=sorted(calendar.closures),
            holiday_data=CALENDAR_DATA_VERSION,
        ),
    )
    listed = present(stored, at, calendar)
    pauses = [
        PauseOut(
            started_at=p.started_at, ends_at=p.ends_at, started_by=p.started_by, ended_by=p.ended_by
        )
        for p in ob.pauses
    ]
    return ObligationDetail(**listed.model_dump(), explanation=explanation, pauses=pauses)


@router.get("/{obligation_id}", response_model=ObligationDetail)
async def get_obligation_explained(
    obligation_id: str,
    principal: Reader,
    session: SessionDep,
    clock: ClockDep,
    as_of: AsOfQuery = None,
) -> ObligationDetail:
    """One obligation as it stood at `as_of` (default now), with the explanation of its
    deadline."""
    ruleset = ruleset_of(principal)
    at = parse_query_instant(as_of, "as_of", ruleset.calendar) or clock()
    stored = await get_obligation(session, principal.org_id, obligation_id, at)
    opening = (
        await get_event(session, principal.org_id, stored.obligation.opened_by_event)
        if stored is not None
        else None
    )
    if stored is None or opening is None:
        raise Problem(
            404, f"No obligation {obligation_id!r} in this organisation.", slug="not-found"
        )
    return explained(stored, opening, ruleset, at)
