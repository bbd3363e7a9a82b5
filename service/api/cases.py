"""A case: its allocation, its log and its obligations."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from service.api.deps import ClockDep, Reader, SessionDep
from service.api.events import EventOut
from service.api.obligations import ObligationOut, present
from service.api.problems import Problem
from service.api.times import AsOfQuery, parse_query_instant
from service.store.cases import read_case
from service.store.orgs import ruleset_of

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
    found = await read_case(session, principal.org_id, case_id, at)
    if found is None:
        raise Problem(404, f"No case {case_id!r} in this organisation.", slug="not-found")
    return CaseOut(
        case_id=found.case.case_id,
        worker_id=found.case.worker_id,
        team_id=found.case.team_id,
        status=found.case.status,
        events=[EventOut.model_validate(e, from_attributes=True) for e in found.events],
        obligations=[present(o, at, calendar) for o in found.obligations],
    )
