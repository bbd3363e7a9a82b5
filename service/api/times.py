"""Reading instants from clients: an offset is required, or a plain date for a local day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Query
from pydantic import BeforeValidator

from service.api.problems import Problem
from service.domain.calendar import Calendar
from service.domain.events import parse_day_or_instant

NAIVE = "must be RFC 3339 with an offset (e.g. 2026-11-02T10:15:00Z), or a plain date"
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999
OUT_OF_RANGE = f"must fall in the years {EARLIEST_YEAR} to {LATEST_YEAR}"


def in_range(value: date | datetime) -> bool:
    """Far-off days overflow time-zone and working-day arithmetic, so they are refused."""
    if isinstance(value, datetime):
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            return False
    return EARLIEST_YEAR <= value.year <= LATEST_YEAR


def _day_or_instant(value: object) -> date | datetime:
    if isinstance(value, str):
        parsed = parse_day_or_instant(value)
        if parsed is None:
            raise ValueError(NAIVE)
        if not in_range(parsed):
            raise ValueError(OUT_OF_RANGE)
        return parsed
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError(NAIVE)
    if isinstance(value, date):
        return value
    raise ValueError(NAIVE)


DayOrInstant = Annotated[date | datetime, BeforeValidator(_day_or_instant)]


def to_instant(value: date | datetime, calendar: Calendar) -> datetime:
    """A plain date is 00:00 local on that day in the organisation's calendar."""
    if isinstance(value, datetime):
        return value
    return calendar.start_of_day(value)


AsOfQuery = Annotated[
    str | None,
    Query(description="Evaluate at this instant (RFC 3339 with offset, or a date); default now."),
]


def parse_query_instant(value: str | None, name: str, calendar: Calendar) -> datetime | None:
    if value is None:
        return None
    parsed = parse_day_or_instant(value)
    if parsed is None:
        raise Problem(
            422,
            f"'{name}' {NAIVE}.",
            slug="validation",
            errors=[{"parameter": name, "detail": NAIVE}],
        )
    if not in_range(parsed):
        raise Problem(
            422,
            f"'{name}' {OUT_OF_RANGE}.",
            slug="validation",
            errors=[{"parameter": name, "detail": OUT_OF_RANGE}],
        )
    return to_instant(parsed, calendar)
