"""Events + ruleset -> obligations: the heart of caseclock.

`derive_case` is a pure function of a case's event log and a ruleset. It sorts the log
itself, so the order events arrived in never matters, and obligation ids depend only on
the case, the rule, the event that opened the chain and the position in it, so deriving
again after a void or a rules change keeps the ids of everything that still exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache

from service.domain.calendar import Calendar, Duration
from service.domain.events import Event, parse_day_or_instant
from service.domain.rules import Matcher, Rule, Ruleset

# Events at the same instant apply in this order (SPEC section 4), then by event id.
_STARTS, _MEETS, _CANCELS, _OTHER = range(4)

Period = tuple[datetime, datetime | None]


@dataclass(frozen=True, slots=True)
class Obligation:
    """One deadline instance, with every instant its status can change at worked out in advance.

    Keeping these instants on the obligation makes its status at any T a handful of
    comparisons, which both Python and SQL can do.
    """

    id: str
    case_id: str
    rule_id: str
    sequence: int
    opened_at: datetime
    due_at: datetime
    opened_by_event: str
    warn_at: datetime | None
    escalate_at: tuple[datetime, ...]
    met_at: datetime | None = None
    met_by_event: str | None = None
    cancelled_at: datetime | None = None
    cancelled_by_event: str | None = None
    at_risk_periods: tuple[Period, ...] = ()

    @property
    def closed_at(self) -> datetime | None:
        return self.met_at or self.cancelled_at


@dataclass(frozen=True, slots=True)
class CaseState:
    """What the event log says about a case as a whole."""

    case_id: str
    worker_id: str | None
    team_id: str | None
    status: str
    obligations: tuple[Obligation, ...]


@dataclass(slots=True, eq=False)
class _Chain:
    """An open obligation being built, with what its repeats inherit."""

    root_event: str
    sequence: int
    opened_at: datetime
    opened_by_event: str
    due_day: date
    correlation: object


@lru_cache(maxsize=1 << 16)
def _deadline_instants(
    calendar: Calendar,
    due_day: date,
    warn_before: Duration | None,
    escalate_after: tuple[Duration, ...],
) -> tuple[datetime, datetime | None, tuple[datetime, ...]]:
    """Due, warning and escalation instants of a due day.

    Pure in its arguments (calendars are equal by settings), so one process shares it across
    every case it derives: most deadlines fall on the same few hundred days.
    """
    warn_at = (
        calendar.start_of_day(calendar.subtract(due_day, warn_before))
        if warn_before is not None
        else None
    )
    escalate_at = tuple(calendar.end_of_day(calendar.add(due_day, d)) for d in escalate_after)
    return calendar.end_of_day(due_day), warn_at, escalate_at


@lru_cache(maxsize=1 << 16)
def _due_day_after(calendar: Calendar, day: date, duration: Duration) -> date:
    return calendar.add(day, duration)


def obligation_id(case_id: str, rule_id: str, root_event: str, sequence: int) -> str:
    digest = hashlib.sha256(f"{case_id}\x1f{rule_id}\x1f{root_event}\x1f{sequence}".encode())
    return "ob_" + digest.hexdigest()[:24]


def _phase(rule: Rule, event: Event) -> int:
    if any(m.matches(event) for m in rule.starts_on):
        return _STARTS
    if any(m.matches(event) for m in rule.met_by):
        return _MEETS
    if any(m.matches(event) for m in rule.cancelled_by):
        return _CANCELS
    return _OTHER


def _matches_any(matchers: Sequence[Matcher], event: Event) -> bool:
    return any(m.matches(event) for m in matchers)


class _RuleDeriver:
    """Runs one rule over one case's log."""

    def __init__(self, rule: Rule, calendar: Calendar, case_id: str) -> None:
        self.rule = rule
        self.calendar = calendar
        self.case_id = case_id
        self.open: list[_Chain] = []
        self.done: list[Obligation] = []

    def _obligation(
        self, chain: _Chain, *, met_by: Event | None = None, cancelled_by: Event | None = None
    ) -> Obligation:
        """The obligation a chain position became, built once it is closed or the log ends."""
        rule = self.rule
        due_at, warn_at, escalate_at = _deadline_instants(
            self.calendar, chain.due_day, rule.warn_before, rule.escalate_after
        )
        return Obligation(
            id=obligation_id(self.case_id, rule.id, chain.root_event, chain.sequence),
            case_id=self.case_id,
            rule_id=rule.id,
            sequence=chain.sequence,
            opened_at=chain.opened_at,
            due_at=due_at,
            opened_by_event=chain.opened_by_event,
            warn_at=warn_at,
            escalate_at=escalate_at,
            met_at=met_by.occurred_at if met_by else None,
            met_by_event=met_by.id if met_by else None,
            cancelled_at=cancelled_by.occurred_at if cancelled_by else None,
            cancelled_by_event=cancelled_by.id if cancelled_by else None,
        )

    def _due_day(self, event: Event) -> date | None:
        if self.rule.due is not None:
            day = self.calendar.local_date(event.occurred_at)
            return _due_day_after(self.calendar, day, self.rule.due)
        value = parse_day_or_instant(event.data.get(self.rule.due_from_data or ""))
        if isinstance(value, datetime):
            return self.calendar.local_date(value)
        return value

    def _targets(self, event: Event, *, meeting: bool) -> list[_Chain]:
        """Open obligations an event can meet or cancel: with `correlate_on`, only its own.

        An event without the key meets only obligations opened without it (completing "a task"
        must not complete every task), but cancels them all, so closing a case ends every task.
        """
        key = self.rule.correlate_on
        if key is None:
            return list(self.open)
        value = event.data.get(key)
        if value is None and not meeting:
            return list(self.open)
        return [c for c in self.open if c.correlation == value]

    def apply(self, event: Event, phase: int) -> None:
        if phase == _STARTS:
            self._start(event)
        elif phase == _MEETS:
            for chain in self._targets(event, meeting=True):
                self._meet(chain, event)
        elif phase == _CANCELS:
            for chain in self._targets(event, meeting=False):
                self._close(chain, cancelled_by=event)

    def _start(self, event: Event) -> None:
        if self.rule.restart == "supersede":
            # With `correlate_on`, a new start supersedes only the obligation it correlates with.
            for chain in self._targets(event, meeting=False):
                self._close(chain, cancelled_by=event)
        due_day = self._due_day(event)
        if due_day is None:
            return
        correlation = event.data.get(self.rule.correlate_on) if self.rule.correlate_on else None
        self.open.append(_Chain(event.id, 1, event.occurred_at, event.id, due_day, correlation))

    def _meet(self, chain: _Chain, event: Event) -> None:
        self.open.remove(chain)
        self.done.append(self._obligation(chain, met_by=event))
        repeat = self.rule.repeat
        if not repeat:
            return
        interval = repeat[min(chain.sequence - 1, len(repeat) - 1)]
        day = self.calendar.local_date(event.occurred_at)
        self.open.append(
            _Chain(
                chain.root_event,
                chain.sequence + 1,
                event.occurred_at,
                event.id,
                _due_day_after(self.calendar, day, interval),
                chain.correlation,
            )
        )

    def _close(self, chain: _Chain, *, cancelled_by: Event) -> None:
        self.open.remove(chain)
        self.done.append(self._obligation(chain, cancelled_by=cancelled_by))

    def finish(self) -> list[Obligation]:
        return self.done + [self._obligation(c) for c in self.open]


def _at_risk_periods(
    obligation: Obligation, rule: Rule, calendar: Calendar, schedules: Sequence[Event]
) -> tuple[Period, ...]:
    """When an open obligation is at risk: unscheduled past `schedule_before`, or booked too late.

    A booking counts for an obligation when it is for a day after the obligation opened
    (so the booking of the review that met the previous one does not count) and was made
    before the obligation closed. The latest booking made by T decides; before any, the
    obligation is at risk from the start of the day `schedule_before` the due day.
    """
    if rule.schedule_before is None:
        return ()
    due_day = calendar.local_date(obligation.due_at)
    opened_day = calendar.local_date(obligation.opened_at)
    # Periods are half-open, and an obligation is still open at the last microsecond of its
    # due day, so risk runs until just after due_at (or until the obligation closes).
    overdue_from = obligation.due_at + timedelta(microseconds=1)
    end = min(obligation.closed_at or overdue_from, overdue_from)
    deadline = calendar.start_of_day(calendar.subtract(due_day, rule.schedule_before))
    bookings: list[tuple[datetime, bool]] = []
    for event in schedules:
        day = parse_day_or_instant(event.data.get("scheduled_for"))
        if day is None or event.occurred_at >= end:
            continue
        booked_day = calendar.local_date(day) if isinstance(day, datetime) else day
        if booked_day > opened_day:
            bookings.append((max(event.occurred_at, obligation.opened_at), booked_day > due_day))

    def at_risk(t: datetime) -> bool:
        latest = [late for effective, late in bookings if effective <= t]
        return latest[-1] if latest else t >= deadline

    points = sorted({obligation.opened_at, deadline, *(b[0] for b in bookings)})
    periods: list[Period] = []
    start: datetime | None = None
    for point in (p for p in points if obligation.opened_at <= p < end):
        risky = at_risk(point)
        if risky and start is None:
            start = point
        elif not risky and start is not None:
            periods.append((start, point))
            start = None
    if start is not None:
        periods.append((start, end))
    return tuple(periods)


def _allocation(events: Sequence[Event]) -> tuple[str | None, str | None, str]:
    worker_id = team_id = None
    status = "open"
    for event in events:
        worker_id = event.worker_id or worker_id
        team_id = event.team_id or team_id
        if event.type == "case_closed":
            status = "closed"
        elif event.type == "case_reopened":
            status = "open"
    return worker_id, team_id, status


def derive_case(case_id: str, events: Iterable[Event], ruleset: Ruleset) -> CaseState:
    """Derive a case's allocation, status and every obligation from its (non-void) events."""
    log = sorted(events, key=lambda e: (e.occurred_at, e.id))
    worker_id, team_id, status = _allocation(log)
    # Each rule looks only at the event types it names, not the whole log: a case of a few
    # hundred events is mostly visits that most rules never mention.
    by_type: dict[str, list[Event]] = {}
    for event in log:
        by_type.setdefault(event.type, []).append(event)
    obligations: list[Obligation] = []
    for rule in ruleset.rules:
        named = {m.type for m in (*rule.starts_on, *rule.met_by, *rule.cancelled_by)}
        candidates = (e for event_type in named for e in by_type.get(event_type, ()))
        relevant = [(e, p) for e in candidates if (p := _phase(rule, e)) != _OTHER]
        if not relevant:
            continue
        relevant.sort(key=lambda ep: (ep[0].occurred_at, ep[1], ep[0].id))
        deriver = _RuleDeriver(rule, ruleset.calendar, case_id)
        for event, phase in relevant:
            deriver.apply(event, phase)
        derived = deriver.finish()
        if rule.scheduled_by:
            booking_types = {m.type for m in rule.scheduled_by}
            schedules = [
                e
                for event_type in booking_types
                for e in by_type.get(event_type, ())
                if _matches_any(rule.scheduled_by, e) and e.data.get("review", rule.id) == rule.id
            ]
            # The latest booking decides, so bookings must be in log order.
            schedules.sort(key=lambda e: (e.occurred_at, e.id))
            derived = [
                replace(o, at_risk_periods=_at_risk_periods(o, rule, ruleset.calendar, schedules))
                for o in derived
            ]
        obligations.extend(derived)
    obligations.sort(key=lambda o: (o.opened_at, o.rule_id, o.sequence, o.id))
    return CaseState(case_id, worker_id, team_id, status, tuple(obligations))
