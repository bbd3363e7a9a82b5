"""Deadline arithmetic in the calendar a local authority actually works to.

Statutory timescales are written in working days (whose bank holidays differ between the UK
nations) or in calendar periods, while instants are stored in UTC; this module is the one place
where the two meet, so the rest of the domain never reasons about weekends, holidays or DST.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from calendar import monthrange
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, time, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from holidays.version import __version__ as holidays_version

Unit = Literal["working_days", "days", "weeks", "months"]

_LABELS: dict[Unit, tuple[str, str]] = {
    "working_days": ("working day", "working days"),
    "days": ("day", "days"),
    "weeks": ("week", "weeks"),
    "months": ("month", "months"),
}
_UNITS_BY_WORD: dict[str, Unit] = {singular: unit for unit, (singular, _) in _LABELS.items()}
# About ten years in each unit: longer than any statutory timescale, and short enough that no
# ruleset can make every derivation fail ("100000 months" leaves the calendar) or crawl
# ("2000000 working days" walks thousands of years of working days).
LONGEST: dict[Unit, int] = {"working_days": 2610, "days": 3650, "weeks": 520, "months": 120}
_DURATION_TEXT = re.compile(r"\s*([0-9]+)\s+(working\s+day|day|week|month)s?\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Duration:
    """A timescale as guidance and rulesets write it, e.g. "45 working days"."""

    count: int
    unit: Unit

    def __post_init__(self) -> None:
        # Rulesets are data, so a bad timescale must fail when loaded, not when a deadline is due.
        if self.count < 0:
            raise ValueError(f"a duration cannot be negative, got {self.count}")
        if self.unit not in _LABELS:
            raise ValueError(f"unknown duration unit {self.unit!r}")
        if self.count > LONGEST[self.unit]:
            raise ValueError(
                f"{self} is too long: at most {LONGEST[self.unit]} {_LABELS[self.unit][1]} "
                "(about ten years)"
            )

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Read the human spelling, so rulesets can quote the statutory guidance verbatim."""
        match = _DURATION_TEXT.fullmatch(text)
        if match is None:
            raise ValueError(
                f"{text!r} is not a duration: "
                "expected 'N working days', 'N days', 'N weeks' or 'N months'"
            )
        return cls(int(match[1]), _UNITS_BY_WORD[" ".join(match[2].lower().split())])

    def __str__(self) -> str:
        singular, plural = _LABELS[self.unit]
        return f"{self.count} {singular if self.count == 1 else plural}"


# The last day the `holidays` package knows GB bank holidays for. Past it a working day would be
# any weekday that is not a closure, so dates past it are refused (events.py).
BANK_HOLIDAYS_KNOWN_UNTIL = date(holidays.country_holidays("GB").end_year, 12, 31)
# The bank-holiday data deadlines are derived with. A release can add a one-off bank holiday
# (a coronation, a state funeral), which moves deadlines that span it, so derivations record it.
CALENDAR_DATA_VERSION = f"holidays {holidays_version}"

REGIONS: dict[str, str | None] = {
    "england-and-wales": "ENG",
    "england": "ENG",
    "wales": "WLS",
    "scotland": "SCT",
    "northern-ireland": "NIR",
    "none": None,
}
# The names the published bank-holiday lists give, where the holiday data words them
# otherwise: an explanation names a skipped day as the list a manager checks it against does.
# A day the data moves off a weekend is the published list's "substitute day".
_PUBLISHED_NAMES = {
    "May Day": "Early May bank holiday",
    "Spring Bank Holiday": "Spring bank holiday",
    "Late Summer Bank Holiday": "Summer bank holiday",
    "Summer Bank Holiday": "Summer bank holiday",
    "New Year Holiday": "2nd January",
    "Saint Andrew's Day": "St Andrew's Day",
    "Saint Patrick's Day": "St Patrick's Day",
    "Battle of the Boyne": "Battle of the Boyne (Orangemen's Day)",
}
_OBSERVED = " (observed)"


@cache
def _bank_holidays(subdivision: str, year: int) -> Mapping[date, str]:
    """A region's bank holidays in a year by their published names. The data is pinned, so
    each year is read from it once per process, however many calendars and explanations ask."""
    found = holidays.country_holidays("GB", subdiv=subdivision, years=year)
    return {day: _published_name(name) for day, name in sorted(found.items())}


def _published_name(name: str) -> str:
    """A bank holiday's name in the holiday data, as the published list writes it."""
    parts = []
    for part in name.split("; "):  # the data joins two holidays on one day with "; "
        observed = part.endswith(_OBSERVED)
        base = part.removesuffix(_OBSERVED)
        base = _PUBLISHED_NAMES.get(base, base)
        parts.append(f"{base}, substitute day" if observed else base)
    return "; ".join(parts)


class Calendar:
    """The working days and local time of one authority.

    Instances are shared across requests, so they are immutable apart from a per-year cache of
    working days; answering with bisect over that cache keeps deriving a whole case to a few
    milliseconds. Bank holidays come from the ``holidays`` package, which only knows GB holidays
    from 1872 to ``BANK_HOLIDAYS_KNOWN_UNTIL``: outside those years only weekends and closures
    are days off.
    """

    __slots__ = ("_closures", "_region", "_subdivision", "_timezone", "_working_days_by_year")

    def __init__(
        self,
        *,
        region: str = "england-and-wales",
        timezone: str = "Europe/London",
        closures: Iterable[date] = (),
    ) -> None:
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}: expected one of {', '.join(REGIONS)}")
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {timezone!r}: expected an IANA name") from exc
        self._region = region
        self._subdivision = REGIONS[region]
        self._timezone = zone
        self._closures = frozenset(closures)
        self._working_days_by_year: dict[int, list[int]] = {}

    @property
    def region(self) -> str:
        return self._region

    @property
    def timezone(self) -> ZoneInfo:
        return self._timezone

    @property
    def closures(self) -> frozenset[date]:
        return self._closures

    def _settings(self) -> tuple[str, str, frozenset[date]]:
        return self._region, self._timezone.key, self._closures

    def __eq__(self, other: object) -> bool:
        # Equal settings give equal answers, so a rebuilt calendar can still hit caches keyed on it.
        if not isinstance(other, Calendar):
            return NotImplemented
        return self._settings() == other._settings()

    def __hash__(self) -> int:
        return hash(self._settings())

    def __repr__(self) -> str:
        return (
            f"Calendar(region={self._region!r}, timezone={self._timezone.key!r}, "
            f"closures=<{len(self._closures)} days>)"
        )

    def is_working_day(self, day: date) -> bool:
        working_days = self._working_days(day.year)
        index = bisect_left(working_days, day.toordinal())
        return index < len(working_days) and working_days[index] == day.toordinal()

    def add(self, day: date, duration: Duration) -> date:
        """The deadline ``duration`` after ``day``; ``day`` itself never counts as a working day."""
        if duration.unit == "working_days":
            return self._working_day_after(day, duration.count) if duration.count else day
        if duration.unit == "months":
            return _add_months(day, duration.count)
        return day + _period(duration)

    def subtract(self, day: date, duration: Duration) -> date:
        """The mirror of ``add``, for reminders and for checking when a clock must have started."""
        if duration.unit == "working_days":
            return self._working_day_before(day, duration.count) if duration.count else day
        if duration.unit == "months":
            return _add_months(day, -duration.count)
        return day - _period(duration)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days in (start, end], i.e. how many working days late or early ``end`` is."""
        if end <= start:
            return 0
        count = bisect_right(self._working_days(end.year), end.toordinal())
        count -= bisect_right(self._working_days(start.year), start.toordinal())
        return count + sum(len(self._working_days(year)) for year in range(start.year, end.year))

    def days_off_between(self, start: date, end: date) -> tuple[list[tuple[date, str]], int]:
        """The weekdays in (start, end] that are not working days, each with why (the bank
        holiday's published name, or "closure"), and how many weekend days there are: what a
        working-day count from `start` to `end` skipped.

        Every alert payload carries an explanation, so the usual answer (no weekday off) is
        found by counting alone, without visiting the days.
        """
        days = max((end - start).days, 0)
        weeks, rest = divmod(days, 7)
        weekend_days = 2 * weeks + sum((start.weekday() + i) % 7 >= 5 for i in range(1, rest + 1))
        days_off: list[tuple[date, str]] = []
        if self.working_days_between(start, end) == days - weekend_days:
            return days_off, weekend_days
        day = start + timedelta(days=1)
        while day <= end:
            if day.weekday() < 5 and not self.is_working_day(day):
                names = _bank_holidays(self._subdivision, day.year) if self._subdivision else {}
                days_off.append((day, names.get(day, "closure")))
            day += timedelta(days=1)
        return days_off, weekend_days

    def local_date(self, instant: datetime) -> date:
        """The authority's date at ``instant``; a naive time would silently mean server time."""
        if instant.utcoffset() is None:
            raise ValueError(f"{instant.isoformat()} has no timezone: expected an aware datetime")
        return instant.astimezone(self._timezone).date()

    def start_of_day(self, day: date) -> datetime:
        """Local midnight in UTC; where DST skips midnight this is the instant the day begins."""
        return datetime.combine(day, time(), tzinfo=self._timezone).astimezone(UTC)

    def end_of_day(self, day: date) -> datetime:
        """The last microsecond before the next local day, so 23- and 25-hour days end correctly.

        Deadlines fall due at the end of their day; 23:59:59.999999 local would be ambiguous
        where clocks go back at midnight.
        """
        return self.start_of_day(day + timedelta(days=1)) - timedelta(microseconds=1)

    def _working_day_after(self, day: date, count: int) -> date:
        year = day.year
        working_days = self._working_days(year)
        index = bisect_right(working_days, day.toordinal()) + count - 1
        while index >= len(working_days):
            index -= len(working_days)
            year += 1
            working_days = self._working_days(year)
        return date.fromordinal(working_days[index])

    def _working_day_before(self, day: date, count: int) -> date:
        year = day.year
        working_days = self._working_days(year)
        index = bisect_left(working_days, day.toordinal()) - count
        while index < 0:
            year -= 1
            working_days = self._working_days(year)
            index += len(working_days)
        return date.fromordinal(working_days[index])

    def _working_days(self, year: int) -> list[int]:
        """Sorted ordinals of the year's working days, built at most once per year in practice."""
        working_days = self._working_days_by_year.get(year)
        if working_days is None:
            # setdefault keeps concurrent builders of the same year agreeing on one list.
            working_days = self._working_days_by_year.setdefault(year, self._build_year(year))
        return working_days

    def _build_year(self, year: int) -> list[int]:
        if not MINYEAR <= year <= MAXYEAR:
            raise OverflowError("date value out of range")
        days_off = {closure.toordinal() for closure in self._closures}
        if self._subdivision is not None:
            days_off.update(
                holiday.toordinal() for holiday in _bank_holidays(self._subdivision, year)
            )
        first, last = date(year, 1, 1).toordinal(), date(year, 12, 31).toordinal()
        # Ordinal 1 is a Monday, so ordinal % 7 is 6 on Saturdays and 0 on Sundays.
        return [
            ordinal
            for ordinal in range(first, last + 1)
            if ordinal % 7 not in (0, 6) and ordinal not in days_off
        ]


def _period(duration: Duration) -> timedelta:
    if duration.unit == "weeks":
        return timedelta(weeks=duration.count)
    return timedelta(days=duration.count)


def _add_months(day: date, months: int) -> date:
    """Calendar months, clamped to the month's end: a month after 31 January is 28/29 February."""
    year, month_index = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month_index + 1, min(day.day, monthrange(year, month_index + 1)[1]))
