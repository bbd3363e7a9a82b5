"""Why a deadline falls when it does, in terms a manager can check by hand.

The explanation is rebuilt from the obligation and the rule it came from, and checked rather
than assumed: it says "N working days after D" only where counting that duration from that
day does give the due day. Where the due day came from a date given in the event's data it
says so; where the rules and calendar in force no longer give the stored day (a closed
case derived under rules or bank-holiday data since changed) it says that instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from service.domain.calendar import Calendar, Duration
from service.domain.derive import Obligation
from service.domain.rules import Rule


@dataclass(frozen=True, slots=True)
class DayOff:
    """A weekday a working-day count skipped: a bank holiday by its name, or a closure."""

    day: date
    name: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """How the due day was worked out, and one sentence that says it. What the obligation
    itself records (its rule, opening event, warning and escalation instants, what met or
    cancelled it) is read from the obligation beside it."""

    counted_from: date | None
    duration: str | None
    working_days_counted: int | None
    weekend_days_skipped: int
    days_off_skipped: tuple[DayOff, ...]
    due_day: date
    due_local: datetime
    due_at: datetime
    sentence: str


def _durations(rule: Rule, sequence: int) -> list[Duration]:
    """The intervals that can have set this position of the rule's chain."""
    candidates: list[Duration] = []
    if sequence == 1 and rule.due is not None:
        candidates.append(rule.due)
    if sequence > 1 or rule.due is None:
        candidates.extend(rule.repeat)
        if rule.later_repeat is not None:
            candidates.append(rule.later_repeat.every)
    return candidates


def _day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b %Y}"


def _short(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def _clock_words(obligation: Obligation, rule_day: date, paused: int, calendar: Calendar) -> str:
    """How pauses and an agreed extension moved the day the rule gave."""
    words = ""
    if paused:
        plural = "s" if paused != 1 else ""
        words += (
            f"; {paused} working day{plural} later, for the time it was paused: {_day(rule_day)}"
        )
    extension = obligation.extension
    if extension is not None:
        agreed = calendar.local_date(obligation.due_at)
        on = calendar.local_date(extension.agreed_at)
        words += (
            f"; extended to the end of {_day(agreed)}, agreed by {extension.authorised_by} "
            f"on {_day(on)}"
        )
    return words


def explain(obligation: Obligation, rule: Rule | None, calendar: Calendar) -> Explanation:
    """The explanation of `obligation` under `rule` (None: no longer in the active ruleset)
    and `calendar`."""
    start = calendar.local_date(obligation.opened_at)
    # The rule's day (before any agreed extension), less the working days it was paused.
    rule_day = calendar.local_date(obligation.timeliness_due_at)
    paused = sum(
        calendar.working_days_between(
            calendar.local_date(p.started_at), calendar.local_date(p.ends_at)
        )
        for p in obligation.pauses
    )
    due_day = calendar.subtract(rule_day, Duration(paused, "working_days")) if paused else rule_day
    candidates = _durations(rule, obligation.sequence) if rule is not None else []
    duration = next((d for d in candidates if calendar.add(start, d) == due_day), None)
    days_off: list[tuple[date, str]] = []
    weekend_days = 0
    if duration is not None and duration.unit == "working_days":
        days_off, weekend_days = calendar.days_off_between(start, due_day)
    due_words = f"Due by the end of {_day(due_day)}"
    if duration is not None:
        sentence = f"{due_words}: {duration} after {_day(start)}"
        if days_off:
            skipped = ", ".join(f"{_short(day)} ({name})" for day, name in days_off)
            sentence += f", skipping {skipped}"
        sentence += _clock_words(obligation, rule_day, paused, calendar)
    elif rule is not None and rule.due_from_data is not None and obligation.sequence == 1:
        sentence = f"{due_words}: the date given in the event's {rule.due_from_data}"
        sentence += _clock_words(obligation, rule_day, paused, calendar)
    else:
        sentence = (
            f"{due_words}, as derived under earlier rules or calendar data: "
            "the rules in force now do not give this day"
        )
    return Explanation(
        counted_from=start if duration is not None else None,
        duration=str(duration) if duration is not None else None,
        working_days_counted=(
            duration.count if duration is not None and duration.unit == "working_days" else None
        ),
        weekend_days_skipped=weekend_days,
        days_off_skipped=tuple(DayOff(day, name) for day, name in days_off),
        due_day=calendar.local_date(obligation.due_at),
        due_local=obligation.due_at.astimezone(calendar.timezone),
        due_at=obligation.due_at,
        sentence=sentence + ".",
    )
