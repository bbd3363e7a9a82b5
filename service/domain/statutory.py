"""The statutory measures a report sets beside the Department for Education's published
figures: which rule each reads, and how a deadline judged in the period is counted.

Each measure is the share of deadlines met on time among those judged in the period (met, or
missed then cancelled, as timeliness counts them), with the median working days from the day
counting started to the day met. One measure, assessments counted from their start as the
Department counts them, is judged here from dates alone, since no stored deadline counts from
the start. docs/sources.md states each counting rule and how it differs from the Department's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from service.domain.calendar import Calendar

# The Department's assessment measure: authorised within 45 working days of the start.
ASSESSMENT_WORKING_DAYS = 45


@dataclass(frozen=True, slots=True)
class Measure:
    """One line of the report: `rule_id` is the built-in rule whose deadlines it counts."""

    id: str
    name: str
    rule_id: str


ASSESSMENT_FROM_START = "assessment-from-start"

MEASURES: tuple[Measure, ...] = (
    Measure(
        "assessment-from-referral",
        "Assessments completed within 45 working days of the referral",
        "assessment-completion",
    ),
    Measure(
        ASSESSMENT_FROM_START,
        "Assessments completed within 45 working days of their start",
        "assessment-completion",
    ),
    Measure(
        "initial-cp-conference",
        "Initial child protection conferences within 15 working days of the strategy discussion",
        "initial-cp-conference",
    ),
    Measure("cp-review", "Child protection reviews on time", "cp-review"),
    Measure("cla-review", "Looked-after reviews on time", "cla-review"),
    Measure("cp-visit", "Child protection visits on time", "cp-visit"),
    Measure("cla-visit", "Looked-after visits on time", "cla-visit"),
)
RULE_IDS: tuple[str, ...] = tuple(dict.fromkeys(m.rule_id for m in MEASURES))


@dataclass(slots=True)
class Tally:
    """A measure's figures as rows are counted. Working days are kept as a histogram (one
    entry per distinct count, never one per row), so the median of a year of an authority
    costs a few hundred entries."""

    numerator: int = 0
    denominator: int = 0
    excluded: int = 0
    working_days: Counter[int] = field(default_factory=Counter)

    def took(self, calendar: Calendar, started: date, met: date) -> None:
        """One deadline met `met`, counted from `started`: working days in (started, met],
        the day counting started never counting itself."""
        self.working_days[calendar.working_days_between(started, met)] += 1

    @property
    def rate(self) -> float | None:
        return round(self.numerator / self.denominator, 4) if self.denominator else None

    @property
    def median_working_days(self) -> float | None:
        return median(self.working_days)


def median(histogram: Counter[int]) -> float | None:
    """The median of the values a histogram counts (the mean of the two middle ones when
    there is an even number of them); None for none."""
    total = sum(histogram.values())
    if not total:
        return None
    ordered = sorted(histogram.items())
    return (_value_at(ordered, (total - 1) // 2) + _value_at(ordered, total // 2)) / 2


def _value_at(ordered: list[tuple[int, int]], index: int) -> int:
    """The `index`-th value (from 0) of sorted (value, count) pairs."""
    for value, count in ordered:
        if index < count:
            return value
        index -= count
    raise IndexError(index)


def judge_from_start(
    tally: Tally, calendar: Calendar, referred: date, started: date | None, completed: date
) -> None:
    """An assessment counted as the Department counts it, from its start to its
    authorisation. A start before the referral belongs to an earlier referral, and no start
    means none was recorded: either way the assessment is left out (`excluded`)."""
    if started is None or started < referred:
        tally.excluded += 1
        return
    days = calendar.working_days_between(started, completed)
    tally.denominator += 1
    if days <= ASSESSMENT_WORKING_DAYS:
        tally.numerator += 1
    tally.working_days[days] += 1
