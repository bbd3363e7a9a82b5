"""Each case's open periods (`domain/caseload.py`) kept in `case_periods`, for caseloads.

The write path re-derives a case whenever it gains or loses an event; most writes leave its
periods as they were (a visit on an open case changes neither its allocation nor whether it
is open). A digest of the periods, stored on the case row that the write path locks and
reads anyway, tells which cases' periods changed, so the others cost no statement at all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.caseload import OpenPeriod
from service.domain.derive import CaseState
from service.store.db import BulkInsert, DeleteEach
from service.store.tables import case_periods


def periods_digest(periods: Sequence[OpenPeriod]) -> str:
    """A fingerprint of the periods: equal exactly when the rows written from them are."""
    text = "\n".join(
        f"{p.starts_at.isoformat()}|{p.ends_at.isoformat() if p.ends_at else ''}|"
        f"{p.worker_id or ''}|{p.team_id or ''}"
        for p in periods
    )
    return hashlib.sha256(text.encode()).hexdigest()


_DELETE_PERIODS = DeleteEach(case_periods, "case_id")
_INSERT_PERIODS = BulkInsert(
    case_periods, ("org_id", "case_id", "position", "starts_at", "ends_at", "worker_id", "team_id")
)


async def replace_periods(
    session: AsyncSession, org_id: str, states: Sequence[CaseState], created: Collection[str]
) -> None:
    """Write the periods of `states` in place of what is stored; cases in `created` were
    created by this transaction and have none stored yet."""
    stale = [s.case_id for s in states if s.case_id not in created]
    await _DELETE_PERIODS.execute(session, org_id, stale)
    rows = [
        {
            "org_id": org_id,
            "case_id": state.case_id,
            "position": position,
            "starts_at": period.starts_at,
            "ends_at": period.ends_at,
            "worker_id": period.worker_id,
            "team_id": period.team_id,
        }
        for state in states
        for position, period in enumerate(state.periods)
    ]
    if rows:
        await _INSERT_PERIODS.execute(session, rows)
