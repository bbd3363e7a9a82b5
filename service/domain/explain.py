"""Why a deadline falls when it does, in terms a manager can check by hand.

The explanation is rebuilt from the obligation and the rule it came from, and checked rather
than assumed: it says "N working days after D" only where counting that duration from that
day does give the due day. Where the due day came another way (a date given in the event's
data, a snapshot's position) it says so instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from service.domain.calendar import CALENDAR_DATA_VERSION, Calendar, Duration
from service.domain.derive import Obligation
from service.domain.events import Event
from service.domain.rules import Rule


@dataclass(frozen=True, slots=True)
class DayOff:
    day: date
    reason: str


@dataclass(frozen=True, slots=True)
class Explanation:
    """Everything that fixed an obligation's deadline, and one sentence that says it."""

    rule_id: str
    rule_name: str
    rule_source: str
    opened_by_event: str
    opened_by_type: str | None
    opened_at: datetime
    counted_from: date
    duration: str | None
    working_days_counted: int | None
    weekend_days_skipped: int
    days_off_skipped: tuple[DayOff, ...]
    due_day: date
    due_local: datetime
    due_at: datetime
    warn_at: datetime | None
    escalate_at: tuple[datetime, ...]
    met_by_event: str | None
    met_at: datetime | None
    cancelled_by_event: str | None
    cancelled_at: datetime | None
    calendar_region: str
    calendar_timezone: str
    calendar_closures: tuple[date, ...]
    calendar_data: str
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


def explain(
    obligation: Obligation, rule: Rule, calendar: Calendar, events: Mapping[str, Event]
) -> Explanation:
    """The explanation of `obligation`, derived under `rule` and `calendar`; `events` are the
    case's events by id (for the type of the one that opened it)."""
    start = calendar.local_date(obligation.opened_at)
    due_day = calendar.local_date(obligation.due_at)
    duration = next(
        (d for d in _durations(rule, obligation.sequence) if calendar.add(start, d) == due_day),
        None,
    )
    days_off: list[tuple[date, str]] = []
    weekend_days = 0
    counted: int | None = None
    if duration is not None and duration.unit == "working_days":
        days_off, weekend_days = calendar.days_off_between(start, due_day)
        counted = duration.count
    opener = events.get(obligation.opened_by_event)
    due_words = f"Due by the end of {_day(due_day)}"
    if duration is not None:
        sentence = f"{due_words}: {duration} after {_day(start)}"
        if days_off:
            skipped = ", ".join(f"{_short(day)} ({reason})" for day, reason in days_off)
            sentence += f", skipping {skipped}"
    elif rule.due_from_data is not None and obligation.sequence == 1:
        sentence = f"{due_words}: the date given in the event's {rule.due_from_data}"
    else:
        sentence = f"{due_words}: the next date after {_day(start)} that the case's record holds"
    return Explanation(
        rule_id=rule.id,
        rule_name=rule.name,
        rule_source=rule.source,
        opened_by_event=obligation.opened_by_event,
        opened_by_type=opener.type if opener else None,
        opened_at=obligation.opened_at,
        counted_from=start,
        duration=str(duration) if duration is not None else None,
        working_days_counted=counted,
        weekend_days_skipped=weekend_days,
        days_off_skipped=tuple(DayOff(day, reason) for day, reason in days_off),
        due_day=due_day,
        due_local=obligation.due_at.astimezone(calendar.timezone),
        due_at=obligation.due_at,
        warn_at=obligation.warn_at,
        escalate_at=obligation.escalate_at,
        met_by_event=obligation.met_by_event,
        met_at=obligation.met_at,
        cancelled_by_event=obligation.cancelled_by_event,
        cancelled_at=obligation.cancelled_at,
        calendar_region=calendar.region,
        calendar_timezone=calendar.timezone.key,
        calendar_closures=tuple(sorted(calendar.closures)),
        calendar_data=CALENDAR_DATA_VERSION,
        sentence=sentence + ".",
    )
