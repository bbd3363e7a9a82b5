"""Reading instants from clients: an offset is required, or a plain date for a local day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BeforeValidator, WithJsonSchema

from service.api.problems import Problem
from service.domain.calendar import Calendar
from service.domain.events import parse_day_or_instant

NAIVE = "must be RFC 3339 with an offset (e.g. 2026-11-02T10:15:00Z), or a plain date"
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999
OUT_OF_RANGE = f"must fall in the years {EARLIEST_YEAR} to {LATEST_YEAR}"


# What DayOrInstant and the instant query parameters accept, for the OpenAPI document. The
# year is judged as written, so the pattern says exactly which years are taken.
DAY_OR_INSTANT_SCHEMA: dict[str, Any] = {
    "type": "string",
    "anyOf": [{"format": "date-time"}, {"format": "date"}],
    "pattern": "^(19|2[0-9])[0-9]{2}-",
}


def in_range(value: date | datetime) -> bool:
    """Far-off days overflow time-zone and working-day arithmetic, so they are refused.

    The year is the one written: a few hours of offset cannot overflow anything, and the
    rule is then one the OpenAPI document can state (DAY_OR_INSTANT_SCHEMA).
    """
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


DayOrInstant = Annotated[
    date | datetime,
    BeforeValidator(_day_or_instant),
    WithJsonSchema(
        {
            **DAY_OR_INSTANT_SCHEMA,
            "description": "RFC 3339 with an offset (2026-11-02T10:15:00Z), or a plain date "
            f"(2026-11-02) meaning 00:00 local that day; years {EARLIEST_YEAR} to {LATEST_YEAR}.",
        }
    ),
]


def to_instant(value: date | datetime, calendar: Calendar) -> datetime:
    """A plain date is 00:00 local on that day in the organisation's calendar."""
    if isinstance(value, datetime):
        return value
    return calendar.start_of_day(value)


def day_or_instant_query(description: str) -> Any:
    """A query parameter read by `parse_query_instant`, documented as what it accepts."""
    return Query(description=description, json_schema_extra=DAY_OR_INSTANT_SCHEMA)


AsOfQuery = Annotated[
    str | None,
    day_or_instant_query(
        "Evaluate at this instant (RFC 3339 with offset, or a date); default now."
    ),
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
