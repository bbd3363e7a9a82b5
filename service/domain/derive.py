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
from datetime import date, datetime

from service.domain.calendar import Calendar
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


@dataclass(slots=True)
class _Chain:
    """An open obligation being built, with what its repeats inherit."""

    obligation: Obligation
    root_event: str
    correlation: object


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

    def _new(
        self,
        root: str,
        sequence: int,
        opened_at: datetime,
        opened_by: str,
        due_day: date,
        correlation: object,
    ) -> _Chain:
        cal, rule = self.calendar, self.rule
        warn_at = (
            cal.start_of_day(cal.subtract(due_day, rule.warn_before))
            if rule.warn_before is not None
            else None
        )
        obligation = Obligation(
            id=obligation_id(self.case_id, rule.id, root, sequence),
            case_id=self.case_id,
            rule_id=rule.id,
            sequence=sequence,
            opened_at=opened_at,
            due_at=cal.end_of_day(due_day),
            opened_by_event=opened_by,
            warn_at=warn_at,
            escalate_at=tuple(cal.end_of_day(cal.add(due_day, d)) for d in rule.escalate_after),
        )
        return _Chain(obligation, root, correlation)

    def _due_day(self, event: Event) -> date | None:
        if self.rule.due is not None:
            return self.calendar.add(self.calendar.local_date(event.occurred_at), self.rule.due)
        value = parse_day_or_instant(event.data.get(self.rule.due_from_data or ""))
        if isinstance(value, datetime):
            return self.calendar.local_date(value)
        return value

    def _targets(self, event: Event) -> list[_Chain]:
        """Open obligations an event can meet or cancel: with `correlate_on`, only its own."""
        key = self.rule.correlate_on
        if key is None or event.data.get(key) is None:
            return list(self.open)
        return [c for c in self.open if c.correlation == event.data.get(key)]

    def apply(self, event: Event, phase: int) -> None:
        if phase == _STARTS:
            self._start(event)
        elif phase == _MEETS:
            for chain in self._targets(event):
                self._meet(chain, event)
        elif phase == _CANCELS:
            for chain in self._targets(event):
                self._close(chain, cancelled_by=event)

    def _start(self, event: Event) -> None:
        if self.rule.restart == "supersede":
            for chain in list(self.open):
                self._close(chain, cancelled_by=event)
        due_day = self._due_day(event)
        if due_day is None:
            return
        correlation = event.data.get(self.rule.correlate_on) if self.rule.correlate_on else None
        self.open.append(self._new(event.id, 1, event.occurred_at, event.id, due_day, correlation))

    def _meet(self, chain: _Chain, event: Event) -> None:
        self.open.remove(chain)
        met = replace(chain.obligation, met_at=event.occurred_at, met_by_event=event.id)
        self.done.append(met)
        repeat = self.rule.repeat
        if not repeat:
            return
        interval = repeat[min(met.sequence - 1, len(repeat) - 1)]
        due_day = self.calendar.add(self.calendar.local_date(event.occurred_at), interval)
        self.open.append(
            self._new(
                chain.root_event,
                met.sequence + 1,
                event.occurred_at,
                event.id,
                due_day,
                chain.correlation,
            )
        )

    def _close(self, chain: _Chain, *, cancelled_by: Event) -> None:
        self.open.remove(chain)
        self.done.append(
            replace(
                chain.obligation,
                cancelled_at=cancelled_by.occurred_at,
                cancelled_by_event=cancelled_by.id,
            )
        )

    def finish(self) -> list[Obligation]:
        return self.done + [c.obligation for c in self.open]


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
    end = min(obligation.closed_at or obligation.due_at, obligation.due_at)
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
    obligations: list[Obligation] = []
    for rule in ruleset.rules:
        relevant = [(e, _phase(rule, e)) for e in log]
        relevant = [(e, p) for e, p in relevant if p != _OTHER]
        if not relevant:
            continue
        relevant.sort(key=lambda ep: (ep[0].occurred_at, ep[1], ep[0].id))
        deriver = _RuleDeriver(rule, ruleset.calendar, case_id)
        for event, phase in relevant:
            deriver.apply(event, phase)
        derived = deriver.finish()
        if rule.scheduled_by:
            schedules = [
                e
                for e in log
                if _matches_any(rule.scheduled_by, e) and e.data.get("review", rule.id) == rule.id
            ]
            derived = [
                replace(o, at_risk_periods=_at_risk_periods(o, rule, ruleset.calendar, schedules))
                for o in derived
            ]
        obligations.extend(derived)
    obligations.sort(key=lambda o: (o.opened_at, o.rule_id, o.sequence, o.id))
    return CaseState(case_id, worker_id, team_id, status, tuple(obligations))
