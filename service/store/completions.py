"""The daily completions rollup: deadlines met per organisation or team, local day and rule.

The write path counts what each change to obligations adds and takes away in a `Tally`, and
adds it to the stored rows as its last step: a write that re-derives case after case (a
rules change) counts every case into one tally first, so it never holds a rollup row while
it waits for the next case's lock. Rows are written in key order, so two writers cannot
deadlock on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.calendar import Calendar
from service.domain.status import missed_then_cancelled
from service.store.db import BulkInsert
from service.store.obligations import judged
from service.store.tables import daily_completions, obligations

WHOLE_ORG = ""
Key = tuple[str, str, date, str]  # org_id, team_id (WHOLE_ORG for every team), day, rule_id


class Tally(dict[Key, list[int]]):
    """Judged, on-time and late-with-a-reason counts by key; negative while it records what
    was taken away.

    A deadline is judged on the day it was met, or on the day it was cancelled if it had
    fallen due unmet by then (missed, then cancelled: late); one cancelled in time is neutral.
    Met on time means by the rule's due date, whatever extension was agreed since.
    """

    def count(
        self,
        org_id: str,
        calendar: Calendar,
        ob: Mapping[Any, Any],
        sign: int = 1,
    ) -> None:
        """Count one obligation row (its columns by name) if it was met or missed."""
        met_at: datetime | None = ob["met_at"]
        cancelled_at: datetime | None = ob["cancelled_at"]
        if met_at is not None:
            day = calendar.local_date(met_at)
            on_time = sign if met_at <= (ob["original_due_at"] or ob["due_at"]) else 0
        elif cancelled_at is not None and missed_then_cancelled(ob["due_at"], cancelled_at):
            day, on_time = calendar.local_date(cancelled_at), 0
        else:
            return
        with_reason = sign if not on_time and ob["delay_reason"] is not None else 0
        teams = (WHOLE_ORG, ob["team_id"]) if ob["team_id"] else (WHOLE_ORG,)
        for team in teams:
            cell = self.setdefault((org_id, team, day, ob["rule_id"]), [0, 0, 0])
            cell[0] += sign
            cell[1] += on_time
            cell[2] += with_reason

    def rows(self) -> list[dict[str, Any]]:
        """The non-zero changes, in key order."""
        return [
            {
                "org_id": org_id,
                "team_id": team,
                "day": day,
                "rule_id": rule,
                "completed": completed,
                "on_time": on_time,
                "late_with_reason": with_reason,
            }
            for (org_id, team, day, rule), (completed, on_time, with_reason) in sorted(self.items())
            if completed or on_time or with_reason
        ]


def _add_to_stored(insert: Any, _dialect: str) -> Any:
    return insert.on_conflict_do_update(
        index_elements=["org_id", "team_id", "day", "rule_id"],
        set_={
            "completed": daily_completions.c.completed + insert.excluded.completed,
            "on_time": daily_completions.c.on_time + insert.excluded.on_time,
            "late_with_reason": daily_completions.c.late_with_reason
            + insert.excluded.late_with_reason,
        },
    )


# Keys are unique within one write (a Tally is keyed by them), as ON CONFLICT requires.
_ADD_COMPLETIONS = BulkInsert(
    daily_completions,
    ("org_id", "team_id", "day", "rule_id", "completed", "on_time", "late_with_reason"),
    _add_to_stored,
)


async def add_to_rollup(session: AsyncSession, changes: Tally) -> None:
    """Add what a write changed to the stored rows; nothing to do when no completion moved."""
    rows = changes.rows()
    if rows:
        await _ADD_COMPLETIONS.execute(session, rows)


async def rebuild_rollup(session: AsyncSession, org_id: str, calendar: Calendar) -> None:
    """Recount an organisation's rows from its obligations (a new timezone moves every day)."""
    await session.execute(delete(daily_completions).where(daily_completions.c.org_id == org_id))
    tally = Tally()
    met = await session.stream(
        select(
            obligations.c.team_id,
            obligations.c.rule_id,
            obligations.c.met_at,
            obligations.c.cancelled_at,
            obligations.c.due_at,
            obligations.c.original_due_at,
            obligations.c.delay_reason,
        ).where(obligations.c.org_id == org_id, judged())
    )
    async for row in met:
        tally.count(org_id, calendar, row._mapping)
    rows = tally.rows()
    if rows:
        await session.execute(daily_completions.insert(), rows)
