"""Reports that sit beside the Department for Education's published measures.

`GET /v1/reports/statutory`: for a period, the share of assessments, initial conferences,
reviews and visits on time, each with its numerator, denominator and median working days
(docs/sources.md, "Measures beside the Department's", gives each counting rule).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from service.api.csv_export import CSV_RESPONSE, FormatQuery, csv_of, wants_csv
from service.api.deps import ClockDep, Reader, SessionDep
from service.api.problems import Problem
from service.api.times import EARLIEST_YEAR, LATEST_YEAR, AsOfQuery, parse_query_instant
from service.domain.calendar import Calendar, Duration
from service.store.dashboard_reads import Scope
from service.store.orgs import ruleset_of
from service.store.statutory_reports import Figures, statutory_report

router = APIRouter(prefix="/v1/reports", tags=["reports"])

# A year is the Department's unit; five side by side still fit, and cost five years' rows.
LONGEST = Duration(60, "months")
_DAY = f"must be a day written YYYY-MM-DD in the years {EARLIEST_YEAR} to {LATEST_YEAR}"
# The whole day in the pattern, so a client generating from the schema writes real days.
_DAY_SCHEMA = {
    "type": "string",
    "format": "date",
    "pattern": "^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
}


class MeasureOut(BaseModel):
    measure: str = Field(description="The measure's id (docs/sources.md).")
    name: str
    rule_id: str = Field(description="The rule whose deadlines it counts.")
    numerator: int = Field(description="Judged in the period and on time.")
    denominator: int = Field(description="Judged in the period: met, or missed then cancelled.")
    rate: float | None = Field(description="numerator / denominator; null when it is 0.")
    median_working_days: float | None = Field(
        description="Median working days from the day counting started to the day met, "
        "that day not counting itself; null when nothing was met."
    )
    excluded: int = Field(
        description="Deadlines judged in the period that this measure cannot count "
        "(an assessment with no start recorded)."
    )


class StatutoryReportOut(BaseModel):
    from_: date = Field(alias="from", serialization_alias="from")
    to: date
    as_of: datetime
    team_id: str | None
    items: list[MeasureOut]


def invalid(parameter: str, detail: str) -> Problem:
    return Problem(
        422,
        f"'{parameter}' {detail}.",
        slug="validation",
        errors=[{"parameter": parameter, "detail": detail}],
    )


def parse_day(value: str, name: str) -> date:
    """A period's first or last day, as the Department's years are written: a plain date."""
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise invalid(name, _DAY) from None
    if len(value) != 10 or not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        raise invalid(name, _DAY)
    return day


def period(first: date, last: date, calendar: Calendar) -> tuple[date, date]:
    """The period, checked: in order, and at most five years (2021-04-01 to 2026-03-31)."""
    if first > last:
        raise invalid("from", "must not be after 'to'")
    if last >= calendar.add(first, LONGEST):
        raise invalid("to", "must be before the same day five years after 'from'")
    return first, last


def measures_out(found: list[Figures]) -> list[MeasureOut]:
    return [
        MeasureOut(
            measure=f.measure.id,
            name=f.measure.name,
            rule_id=f.measure.rule_id,
            numerator=f.tally.numerator,
            denominator=f.tally.denominator,
            rate=f.tally.rate,
            median_working_days=f.tally.median_working_days,
            excluded=f.tally.excluded,
        )
        for f in found
    ]


@router.get(
    "/statutory",
    response_model=StatutoryReportOut,
    responses={
        **CSV_RESPONSE,
        422: {"description": "A day that cannot be read, or a period out of order or too long"},
    },
)
async def statutory(
    request: Request,
    principal: Reader,
    session: SessionDep,
    clock: ClockDep,
    from_: Annotated[
        str,
        Query(alias="from", description="The period's first day.", json_schema_extra=_DAY_SCHEMA),
    ],
    to: Annotated[
        str,
        Query(
            description="The period's last day (before the same day five years on).",
            json_schema_extra=_DAY_SCHEMA,
        ),
    ],
    as_of: AsOfQuery = None,
    team_id: Annotated[str | None, Query(description="Only this team's cases.")] = None,
    format: FormatQuery = None,
) -> StatutoryReportOut | Response:
    """Assessments, initial conferences, reviews and visits on time among the deadlines
    judged (met, or missed then cancelled) on a day of the period, as they stood at `as_of`
    (default now): each with numerator, denominator and median working days.

    Assessments are given twice: counted from the referral, as Working Together sets the
    timescale, and from the assessment's start, as the Department for Education counts them.
    """
    calendar = ruleset_of(principal).calendar
    at = parse_query_instant(as_of, "as_of", calendar) or clock()
    first, last = period(parse_day(from_, "from"), parse_day(to, "to"), calendar)
    scope = Scope(principal.org_id, team_id)
    items = measures_out(await statutory_report(session, scope, first, last, at, calendar))
    if wants_csv(request, format):
        return csv_of("statutory.csv", MeasureOut, items)
    return StatutoryReportOut.model_validate(
        {"from": first, "to": last, "as_of": at, "team_id": team_id, "items": items}
    )
