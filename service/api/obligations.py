"""Obligations out: filtered, evaluated at any instant, paged."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from service.api.deps import ClockDep, Reader, SessionDep
from service.api.pagination import Cursor, Limit, Page, decode_instant_cursor, encode_cursor
from service.api.problems import Problem
from service.api.times import AsOfQuery, day_or_instant_query, parse_query_instant
from service.domain.calendar import Calendar
from service.domain.status import (
    STATUSES,
    Status,
    escalation_level,
    is_at_risk,
    is_missed,
    status_at,
    working_days_overdue,
)
from service.store.obligations import StoredObligation, find_obligations, parse_statuses
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
    cancelled_at: datetime | None
    worker_id: str | None
    team_id: str | None
    sequence: int
    working_days_overdue: int
    escalation_level: int
    at_risk: bool
    opened_by_event: str
    met_by_event: str | None


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
        cancelled_at=ob.cancelled_at if cancelled else None,
        worker_id=stored.worker_id,
        team_id=stored.team_id,
        sequence=ob.sequence,
        working_days_overdue=working_days_overdue(ob, at, calendar),
        escalation_level=escalation_level(ob, at),
        at_risk=is_at_risk(ob, at),
        opened_by_event=ob.opened_by_event,
        met_by_event=ob.met_by_event if met else None,
    )


@router.get("", response_model=Page[ObligationOut])
async def list_obligations(
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
) -> Page[ObligationOut]:
    """Obligations by due date, as they stood at `as_of` (default now).

    `status` takes one or more of upcoming, due_soon, overdue, met, met_late, cancelled,
    comma-separated.
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
    before = parse_query_instant(due_before, "due_before", calendar)
    after = decode_instant_cursor(cursor) if cursor is not None else None
    found = await find_obligations(
        session,
        principal.org_id,
        at=at,
        statuses=statuses,
        rule_id=rule_id,
        case_id=case_id,
        team_id=team_id,
        worker_id=worker_id,
        due_before=before,
        limit=limit,
        after=after,
    )
    items = [present(stored, at, calendar) for stored in found[:limit]]
    next_cursor = None
    if len(found) > limit:
        next_cursor = encode_cursor(items[-1].due_at.isoformat(), items[-1].id)
    return Page[ObligationOut](items=items, next_cursor=next_cursor)
