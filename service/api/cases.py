"""A case: its allocation, its log and its obligations."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from service.api.deps import ClockDep, Reader, SessionDep
from service.api.events import EventOut
from service.api.obligations import ObligationOut, present
from service.api.problems import Problem
from service.api.times import AsOfQuery, parse_query_instant
from service.store.obligations import from_row, select_obligations
from service.store.orgs import ruleset_of
from service.store.tables import cases, events, obligations

router = APIRouter(prefix="/v1/cases", tags=["cases"])


class CaseOut(BaseModel):
    case_id: str
    worker_id: str | None
    team_id: str | None
    status: str
    events: list[EventOut]
    obligations: list[ObligationOut]


# `:path` because case ids are opaque CMS references and may contain "/".
@router.get("/{case_id:path}", response_model=CaseOut)
async def get_case(
    case_id: str, principal: Reader, session: SessionDep, clock: ClockDep, as_of: AsOfQuery = None
) -> CaseOut:
    calendar = ruleset_of(principal).calendar
    at = parse_query_instant(as_of, "as_of", calendar) or clock()
    case = (
        await session.execute(
            select(cases).where(cases.c.org_id == principal.org_id, cases.c.case_id == case_id)
        )
    ).one_or_none()
    if case is None:
        raise Problem(404, f"No case {case_id!r} in this organisation.", slug="not-found")
    log = (
        await session.execute(
            select(events)
            .where(events.c.org_id == principal.org_id, events.c.case_id == case_id)
            .order_by(events.c.occurred_at, events.c.id)
        )
    ).all()
    derived = (
        await session.execute(
            select_obligations(principal.org_id)
            .where(obligations.c.case_id == case_id, obligations.c.opened_at <= at)
            .order_by(obligations.c.opened_at, obligations.c.rule_id, obligations.c.sequence)
        )
    ).all()
    return CaseOut(
        case_id=case.case_id,
        worker_id=case.worker_id,
        team_id=case.team_id,
        status=case.status,
        events=[EventOut.model_validate(e, from_attributes=True) for e in log],
        obligations=[present(from_row(o), at, calendar) for o in derived],
    )
