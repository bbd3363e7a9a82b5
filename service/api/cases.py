"""A case: its allocation, its log and its obligations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from service.api.deps import ClockDep, Reader, SessionDep
from service.api.events import EventOut
from service.api.obligations import ObligationOut, present
from service.api.problems import Problem
from service.api.times import AsOfQuery, parse_query_instant
from service.domain.derive import derive_case
from service.domain.events import CLOCK_EVENT_TYPES, Event
from service.domain.rules import Ruleset
from service.store.cases import read_case
from service.store.orgs import ruleset_of

router = APIRouter(prefix="/v1/cases", tags=["cases"])


class NoEffectOut(BaseModel):
    event_id: str
    detail: str


class CaseOut(BaseModel):
    case_id: str
    worker_id: str | None
    team_id: str | None
    status: str
    events: list[EventOut]
    obligations: list[ObligationOut]
    without_effect: list[NoEffectOut] = Field(
        description="Events about a deadline's clock (a reason, an extension, a pause or a "
        "resume) that changed nothing under the active ruleset, and why: docs/rules.md."
    )


def _without_effect(case_id: str, rows: Sequence[Any], ruleset: Ruleset) -> list[NoEffectOut]:
    """Derived again from the log, as only derivation can tell; most logs have no such event."""
    log = [Event(*(getattr(r, f) for f in _EVENT_FIELDS)) for r in rows if r.voided_at is None]
    if not any(e.type in CLOCK_EVENT_TYPES for e in log):
        return []
    state = derive_case(case_id, log, ruleset)
    return [NoEffectOut(event_id=n.event_id, detail=n.detail) for n in state.without_effect]


_EVENT_FIELDS = ("id", "type", "case_id", "occurred_at", "worker_id", "team_id", "data")


# `:path` because case ids are opaque CMS references and may contain "/".
@router.get("/{case_id:path}", response_model=CaseOut)
async def get_case(
    case_id: str, principal: Reader, session: SessionDep, clock: ClockDep, as_of: AsOfQuery = None
) -> CaseOut:
    ruleset = ruleset_of(principal)
    calendar = ruleset.calendar
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
        without_effect=_without_effect(found.case.case_id, found.events, ruleset),
    )
