"""The statutory measures of a period, counted from the stored obligations.

Numerators and denominators are counted by the database, from the deadlines judged in the
period (met, or missed then cancelled: `store.obligations.judged`), on the indexed
`closed_at`. Medians need working days, which only the organisation's calendar knows, so the
met deadlines are read once, a row at a time, into histograms (service/domain/statutory.py):
memory stays one entry per distinct count, however long the period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.calendar import Calendar
from service.domain.statutory import (
    ASSESSMENT_FROM_START,
    MEASURES,
    RULE_IDS,
    Measure,
    Tally,
    judge_from_start,
)
from service.store.dashboard_reads import Scope, _in_scope
from service.store.obligations import judged
from service.store.tables import events, obligations

# Rows fetched at a time: iterating a stream row by row costs a switch into the driver per
# row, which was most of the time of a year's report.
_BATCH = 5000
ASSESSMENT_RULE = next(m.rule_id for m in MEASURES if m.id == ASSESSMENT_FROM_START)


@dataclass(frozen=True, slots=True)
class Figures:
    """A measure and what was counted for it."""

    measure: Measure
    tally: Tally


def _judged_between(
    query: Select[Any], scope: Scope, first: date, last: date, at: datetime, calendar: Calendar
) -> Select[Any]:
    """The measured rules' deadlines judged on a local day from `first` to `last`, by `at`."""
    return _in_scope(query, scope).where(
        obligations.c.rule_id.in_(RULE_IDS),
        obligations.c.closed_at >= calendar.start_of_day(first),
        obligations.c.closed_at < calendar.start_of_day(last + timedelta(days=1)),
        obligations.c.closed_at <= at,
        judged(),
    )


# The start of the assessment that met an assessment deadline: the case's latest
# `assessment_started` at or before the meeting (judge_from_start drops one before the referral).
_ASSESSMENT_STARTED = (
    select(func.max(events.c.occurred_at))
    .where(
        events.c.org_id == obligations.c.org_id,
        events.c.case_id == obligations.c.case_id,
        events.c.type == "assessment_started",
        events.c.voided_at.is_(None),
        events.c.occurred_at <= obligations.c.met_at,
    )
    .scalar_subquery()
)


async def statutory_report(
    session: AsyncSession,
    scope: Scope,
    first: date,
    last: date,
    at: datetime,
    calendar: Calendar,
) -> list[Figures]:
    """Every measure for the deadlines judged from `first` to `last` (local days), as they
    stood at `at`."""
    tallies = {measure.id: Tally() for measure in MEASURES}
    by_rule = {m.rule_id: tallies[m.id] for m in MEASURES if m.id != ASSESSMENT_FROM_START}
    counts = _judged_between(
        select(
            obligations.c.rule_id,
            func.count().label("judged"),
            func.count().filter(obligations.c.met_at <= obligations.c.due_at).label("on_time"),
        ),
        scope,
        first,
        last,
        at,
        calendar,
    ).group_by(obligations.c.rule_id)
    for row in await session.execute(counts):
        by_rule[row.rule_id].denominator = int(row.judged)
        by_rule[row.rule_id].numerator = int(row.on_time)
    met = _judged_between(
        select(
            obligations.c.rule_id,
            obligations.c.opened_at,
            obligations.c.met_at,
            case(
                (obligations.c.rule_id == ASSESSMENT_RULE, _ASSESSMENT_STARTED), else_=null()
            ).label("assessment_started"),
        ),
        scope,
        first,
        last,
        at,
        calendar,
    ).where(obligations.c.met_at.is_not(None))
    from_start = tallies[ASSESSMENT_FROM_START]
    rows = await session.stream(met.execution_options(yield_per=_BATCH))
    async for batch in rows.partitions():
        for row in batch:
            started, met_on = calendar.local_date(row.opened_at), calendar.local_date(row.met_at)
            by_rule[row.rule_id].took(calendar, started, met_on)
            if row.rule_id == ASSESSMENT_RULE:
                begun = row.assessment_started
                judge_from_start(
                    from_start,
                    calendar,
                    started,
                    None if begun is None else calendar.local_date(begun),
                    met_on,
                )
    return [Figures(measure, tallies[measure.id]) for measure in MEASURES]
