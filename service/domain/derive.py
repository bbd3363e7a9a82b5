"""Events + ruleset -> obligations: the heart of caseclock.

`derive_case` is a pure function of a case's event log and a ruleset. It sorts the log
itself, so the order events arrived in never matters, and obligation ids depend only on
the case, the rule, the event that opened the chain and the position in it, so deriving
again after a void or a rules change keeps the ids of everything that still exists.

A meeting event may say which position of a repeating chain it meets (`data.sequence`, see
`claimed_position`): snapshots such as Annex A hold only the latest review or visit, and the
chain then resumes from it without claiming anything about the positions before. A snapshot
also records what it could and could not see (a `SNAPSHOT_TYPE` event, see
`_RuleDeriver.observe`), so a deadline it could not judge is not reported and a miss it proved
is not forgotten when a later snapshot shows only a later date.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from functools import lru_cache

from service.domain.calendar import Calendar, Duration
from service.domain.caseload import OpenPeriod, open_periods
from service.domain.events import (
    CLOCK_EVENT_TYPES,
    EXTENDED,
    PAUSED,
    REASON_RECORDED,
    RESUMED,
    Event,
    parse_day_or_instant,
    parse_plain_date,
    target_sequence,
)
from service.domain.rules import Matcher, Rule, Ruleset, clock_refusal

# Events at the same instant apply in this order (docs/rules.md, Date arithmetic), then by
# event id: a start first, then what is said of the deadlines open at that instant (a reason,
# an extension, a pause), then meetings and cancellations; a snapshot last, as it describes
# the day the other events left.
_STARTS, _CLOCK, _MEETS, _CANCELS, _OTHER, _SNAPSHOT = range(6)
_WORKING_DAY = Duration(1, "working_days")

Period = tuple[datetime, datetime | None]
# The data key of a meeting event that says which position of a repeating chain it meets.
SEQUENCE_KEY = "sequence"
# A snapshot's record of itself: in `data`, the latest day it shows of some event types (null:
# none), and the event types it could not show for the case.
SNAPSHOT_TYPE = "snapshot_taken"
LATEST_KEY = "latest"
UNSEEN_KEY = "unseen"


@dataclass(frozen=True, slots=True)
class DelayReason:
    """Why a deadline is (or was) late, as last recorded: a code from the organisation's list
    and a short note, by a `delay_reason_recorded` or `deadline_extended` event."""

    code: str
    label: str  # the code's label in the ruleset it was derived under
    note: str | None
    event_id: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Extension:
    """The agreement that moved a deadline's due date (the latest, when there were several)."""

    event_id: str
    agreed_at: datetime
    authorised_by: str


@dataclass(frozen=True, slots=True)
class Pause:
    """A stretch when a deadline's clock stood still: to a resume, or to the rule's maximum."""

    started_at: datetime
    ends_at: datetime
    started_by: str
    ended_by: str | None  # None: it ended by itself at the rule's maximum (or the deadline closed)


@dataclass(frozen=True, slots=True)
class NoEffect:
    """An event about a deadline's clock that changed nothing, and why."""

    event_id: str
    detail: str


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
    # `met_at` is only the latest it can have been met: the meeting event is a snapshot's
    # latest date (an Annex A extract), and an earlier event the log lacks may have met it.
    met_at_latest: bool = False
    # With an agreed extension, the due date the rule gave (pauses included): status and
    # alerts follow `due_at`, timeliness this. None when no extension moved it.
    original_due_at: datetime | None = None
    delay_reason: DelayReason | None = None
    extension: Extension | None = None
    pauses: tuple[Pause, ...] = ()

    @property
    def closed_at(self) -> datetime | None:
        return self.met_at or self.cancelled_at

    @property
    def timeliness_due_at(self) -> datetime:
        """The date timeliness counts against: the rule's, whatever was agreed since."""
        return self.original_due_at or self.due_at


@dataclass(frozen=True, slots=True)
class CaseState:
    """What the event log says about a case as a whole."""

    case_id: str
    worker_id: str | None
    team_id: str | None
    status: str
    obligations: tuple[Obligation, ...]
    # When the case was open and to whom it was allocated: the caseload at any instant.
    periods: tuple[OpenPeriod, ...]
    # Events about a deadline's clock that changed nothing, by event id.
    without_effect: tuple[NoEffect, ...] = ()


@dataclass(slots=True, eq=False)
class _Chain:
    """An open obligation being built, with what its repeats inherit."""

    root_event: str
    sequence: int
    opened_at: datetime
    opened_by_event: str
    due_day: date
    correlation: object
    # Set by snapshots (`observe`): the log may lack what met or cancelled this position, or a
    # snapshot proved it still unmet after its due day.
    unseen: bool = False
    proven_missed: bool = False
    # Set by events about the clock (`_RuleDeriver.clock`): `due_day` is the rule's day moved
    # by pauses, `agreed_day` an extension's (moved by later pauses too).
    agreed_day: date | None = None
    # The warning instant in force when the deadline was extended or paused inside its
    # warning window: it was due soon then, and stays so (as_of reads keep their answer).
    warned_at: datetime | None = None
    paused_by: Event | None = None
    pauses: list[Pause] = field(default_factory=list)
    reason: DelayReason | None = None
    extension: Extension | None = None

    @property
    def day_in_force(self) -> date:
        return self.agreed_day or self.due_day


Instants = tuple[datetime, datetime | None, tuple[datetime, ...]]
_MEMO_LIMIT = 1 << 16


class _Deadlines:
    """Due days and deadline instants of one calendar, memoised for every case derived with it.

    Pure in their arguments, so one process shares them: most deadlines fall on the same few
    hundred days. Memo keys hold a small integer standing for the durations involved (see
    `token`), so a lookup hashes neither the calendar nor the durations: deriving a long case
    makes tens of thousands of them.
    """

    __slots__ = ("_calendar", "_counter", "_due_days", "_instants", "_tokens")

    def __init__(self, calendar: Calendar) -> None:
        self._calendar = calendar
        self._tokens: dict[object, int] = {}
        self._counter = itertools.count()
        self._due_days: dict[tuple[date, int], date] = {}
        self._instants: dict[tuple[date, int], Instants] = {}

    def token(self, durations: object) -> int:
        """A stable small integer for a duration, or a (warn_before, escalate_after) pair."""
        found = self._tokens.get(durations)
        if found is None:
            # next() on a count is atomic, so two threads never share a token.
            found = self._tokens.setdefault(durations, next(self._counter))
        return found

    def due_day_after(self, day: date, duration: Duration, token: int) -> date:
        key = (day, token)
        found = self._due_days.get(key)
        if found is None:
            if len(self._due_days) >= _MEMO_LIMIT:
                self._due_days.clear()
            found = self._due_days[key] = self._calendar.add(day, duration)
        return found

    def instants(
        self,
        due_day: date,
        warn_before: Duration | None,
        escalate_after: tuple[Duration, ...],
        token: int,
    ) -> Instants:
        """Due, warning and escalation instants of a due day."""
        key = (due_day, token)
        found = self._instants.get(key)
        if found is None:
            if len(self._instants) >= _MEMO_LIMIT:
                self._instants.clear()
            calendar = self._calendar
            warn_at = (
                calendar.start_of_day(calendar.subtract(due_day, warn_before))
                if warn_before is not None
                else None
            )
            escalate_at = tuple(
                calendar.end_of_day(calendar.add(due_day, d)) for d in escalate_after
            )
            found = self._instants[key] = (calendar.end_of_day(due_day), warn_at, escalate_at)
        return found


@lru_cache(maxsize=64)
def _deadlines(calendar: Calendar) -> _Deadlines:
    return _Deadlines(calendar)


def obligation_id(case_id: str, rule_id: str, root_event: str, sequence: int) -> str:
    digest = hashlib.sha256(f"{case_id}\x1f{rule_id}\x1f{root_event}\x1f{sequence}".encode())
    return "ob_" + digest.hexdigest()[:24]


def claimed_position(event: Event) -> int | None:
    """The chain position a meeting event claims in `data.sequence` (an integer from 2), if any.

    Snapshots such as Annex A give only the latest review or visit; they say "at least the
    second" with `sequence = 2`, and derivation then claims nothing about earlier positions.
    """
    value = event.data.get(SEQUENCE_KEY)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 2:
        return value
    return None


def _phase(rule: Rule, event: Event) -> int:
    if _matches_any(rule.starts_on, event):
        return _STARTS
    if _matches_any(rule.met_by, event):
        return _MEETS
    if _matches_any(rule.cancelled_by, event):
        return _CANCELS
    return _OTHER


def _matches_any(matchers: Sequence[Matcher], event: Event) -> bool:
    # A loop rather than any() over a generator: asked for every event of every case.
    for matcher in matchers:  # noqa: SIM110
        if matcher.matches(event):
            return True
    return False


class _RuleDeriver:
    """Runs one rule over one case's log."""

    def __init__(
        self, rule: Rule, ruleset: Ruleset, case_id: str, counting: Sequence[Event] = ()
    ) -> None:
        self.rule = rule
        self.ruleset = ruleset
        calendar = self.calendar = ruleset.calendar
        # The rule's `counts_from` events in log order, and when it last started, was met or
        # was cancelled: each counting event serves the next start only.
        self.counting = counting
        self.counting_since: datetime | None = None
        deadlines = self.deadlines = _deadlines(calendar)
        self.warnings_token = deadlines.token((rule.warn_before, rule.escalate_after))
        self.due_token = deadlines.token(rule.due)
        self.repeat_tokens = tuple(deadlines.token(d) for d in rule.repeat)
        # With `later_repeat`: its interval, and the chains (by opening event) it applies to
        # with the day from which it does.
        later = rule.later_repeat
        self.later_interval = (later.every, deadlines.token(later.every)) if later else None
        self.later_from: dict[str, date] = {}
        self.case_id = case_id
        self.open: list[_Chain] = []
        self.done: list[Obligation] = []
        self.no_effect: list[NoEffect] = []
        self.pausing = False  # whether any chain has been paused: most never are

    def _obligation(
        self,
        chain: _Chain,
        *,
        met_by: Event | None = None,
        cancelled_by: Event | None = None,
        met_at_latest: bool = False,
    ) -> Obligation:
        """The obligation a chain position became, built once it is closed or the log ends."""
        rule = self.rule
        if chain.paused_by is not None:  # closed while paused: the clock stood still till then
            closed = met_by or cancelled_by
            self._settle(chain, chain.paused_by, closed.occurred_at if closed else None, None)
        due_at, warn_at, escalate_at = self._instants(chain.day_in_force)
        if chain.warned_at is not None:
            warn_at = chain.warned_at
        elif warn_at is not None:
            warn_at = _after_pauses(warn_at, chain.pauses)
        original_due_at = self._instants(chain.due_day)[0] if chain.agreed_day else None
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
            met_at_latest=met_at_latest,
            original_due_at=original_due_at,
            delay_reason=chain.reason,
            extension=chain.extension,
            pauses=tuple(chain.pauses),
        )

    def _instants(self, due_day: date) -> Instants:
        rule = self.rule
        return self.deadlines.instants(
            due_day, rule.warn_before, rule.escalate_after, self.warnings_token
        )

    def _due_day(self, event: Event) -> date | None:
        if self.rule.due is not None:
            day = self.calendar.local_date(event.occurred_at)
            return self.deadlines.due_day_after(day, self.rule.due, self.due_token)
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
        if self.pausing:
            self._end_expired_pauses(event.occurred_at)
        position = claimed_position(event) if phase in (_STARTS, _MEETS) else None
        if phase in (_MEETS, _CANCELS):
            self.counting_since = event.occurred_at
        if phase == _STARTS and position is not None:
            self._resume(event, position)
        elif phase == _STARTS:
            self._start(event)
        elif phase == _MEETS:
            for chain in self._targets(event, meeting=True):
                if position is None and not chain.unseen:
                    self._meet(chain, event)
                else:
                    self._meet_from_snapshot(chain, event, position or chain.sequence)
        elif phase == _CANCELS:
            for chain in self._targets(event, meeting=False):
                self._close(chain, cancelled_by=event)
        elif phase == _CLOCK:
            self.clock(event)
        elif phase == _SNAPSHOT:
            self.observe(event)

    def clock(self, event: Event) -> None:
        """An event about one deadline's clock: a reason, an extension, a pause or a resume.

        Each acts on the open deadline it names (`data.sequence`, else the open one due first);
        a reason may also name one already closed (recorded after a late completion). One that
        cannot act is kept in `no_effect` with why, and changes nothing.
        """
        if event.type == REASON_RECORDED:
            self._record_reason(event)
            return
        chain = self._open_target(event, paused=event.type == RESUMED)
        if chain is None:
            what = "paused deadline" if event.type == RESUMED else "open deadline"
            self._refuse(event, f"no {what} of rule {self.rule.id!r}{_position(event)}")
        elif event.type == RESUMED and chain.paused_by is not None:
            self._settle(chain, chain.paused_by, event.occurred_at, event)
        elif event.type == PAUSED:
            self._pause(chain, event)
        elif event.type == EXTENDED:
            self._extend(chain, event)

    def _refuse(self, event: Event, detail: str) -> None:
        self.no_effect.append(NoEffect(event.id, detail))

    def _open_target(self, event: Event, *, paused: bool = False) -> _Chain | None:
        sequence = target_sequence(event.data)
        found = [
            c
            for c in self._targets(event, meeting=False)
            if (sequence is None or c.sequence == sequence)
            and (not paused or c.paused_by is not None)
        ]
        return min(
            found,
            key=lambda c: (c.day_in_force, c.opened_at, c.root_event, c.sequence),
            default=None,
        )

    def _record_reason(self, event: Event) -> None:
        reason = self._reason(event)
        chain = self._open_target(event)
        if chain is not None:
            chain.reason = reason
            return
        sequence = target_sequence(event.data)
        closed = [i for i, o in enumerate(self.done) if sequence is None or o.sequence == sequence]
        if not closed:
            self._refuse(event, f"no deadline of rule {self.rule.id!r}{_position(event)}")
            return
        latest = max(closed, key=lambda i: (self.done[i].opened_at, self.done[i].id))
        self.done[latest] = replace(self.done[latest], delay_reason=reason)

    def _running(self, chain: _Chain, event: Event) -> bool:
        """Whether the deadline is still running when `event` happens: an extension or pause
        after the date in force had passed would rewrite what was overdue then."""
        if event.occurred_at <= self._instants(chain.day_in_force)[0]:
            return True
        self._refuse(event, "the deadline had fallen due by then; record a reason instead")
        return False

    def _keep_warning(self, chain: _Chain, at: datetime) -> None:
        """A deadline due soon when it is extended or paused stays due soon."""
        if chain.warned_at is None:
            warn_at = self._instants(chain.day_in_force)[1]
            if warn_at is not None:
                warn_at = _after_pauses(warn_at, chain.pauses)
                if warn_at <= at:
                    chain.warned_at = warn_at

    def _extend(self, chain: _Chain, event: Event) -> None:
        if not self._running(chain, event):
            return
        agreed = self._agreed_day(chain, event)
        limit = self.rule.max_extension
        if agreed is None or limit is None:
            self._refuse(event, "gives no agreed due day")
        elif agreed <= chain.day_in_force:
            self._refuse(event, "does not move the due date later")
        elif agreed > self.calendar.add(chain.due_day, limit):
            self._refuse(event, f"moves the due date past the rule's maximum, {limit} after it")
        else:
            self._keep_warning(chain, event.occurred_at)
            chain.agreed_day = agreed
            chain.extension = Extension(
                event.id, event.occurred_at, str(event.data.get("authorised_by"))
            )
            chain.reason = self._reason(event)

    def _reason(self, event: Event) -> DelayReason:
        code = str(event.data.get("reason"))
        note = event.data.get("note")
        return DelayReason(
            code,
            self.ruleset.reason_label(code),
            note if isinstance(note, str) else None,
            event.id,
            event.occurred_at,
        )

    def _agreed_day(self, chain: _Chain, event: Event) -> date | None:
        """The day an extension agrees: `due_on`, or `extend_by` after the date in force."""
        due_on = event.data.get("due_on")
        if isinstance(due_on, str):
            return parse_plain_date(due_on.strip())
        try:
            return self.calendar.add(
                chain.day_in_force, Duration.parse(str(event.data["extend_by"]))
            )
        except (KeyError, ValueError):
            return None

    def _pause(self, chain: _Chain, event: Event) -> None:
        if chain.paused_by is not None:
            self._refuse(event, "the deadline is paused already")
        elif self._running(chain, event):
            self._keep_warning(chain, event.occurred_at)
            chain.paused_by = event
            self.pausing = True

    def _pause_end(self, paused_by: Event) -> tuple[date, datetime]:
        """The day and instant a pause ends by itself: the rule's maximum after it began (only
        pausable rules are given pauses, see `_clock_events_by_rule`)."""
        day = self.calendar.local_date(paused_by.occurred_at)
        last = self.calendar.add(day, self.rule.max_pause or Duration(0, "working_days"))
        return last, self.calendar.end_of_day(last)

    def _end_expired_pauses(self, at: datetime) -> None:
        for chain in self.open:
            if chain.paused_by is not None and at > self._pause_end(chain.paused_by)[1]:
                self._settle(chain, chain.paused_by, None, None)

    def _settle(
        self, chain: _Chain, paused_by: Event, at: datetime | None, resumed_by: Event | None
    ) -> None:
        """End a chain's pause at `at` (None: at the rule's maximum, as it ends by itself, or at
        whichever comes first) and move its due days later by the working days it lasted, in
        (the day it began, the day it ended]; never to before the day it ended."""
        last_day, last_instant = self._pause_end(paused_by)
        if at is None or at > last_instant:
            ends_at, end_day, ended_by = last_instant, last_day, None
        else:
            ends_at, end_day = at, self.calendar.local_date(at)
            ended_by = resumed_by.id if resumed_by is not None else None
        began = self.calendar.local_date(paused_by.occurred_at)
        days = Duration(self.calendar.working_days_between(began, end_day), "working_days")
        chain.due_day = self._not_before(self.calendar.add(chain.due_day, days), end_day)
        if chain.agreed_day is not None:
            chain.agreed_day = self._not_before(self.calendar.add(chain.agreed_day, days), end_day)
        if ends_at > paused_by.occurred_at:
            chain.pauses.append(Pause(paused_by.occurred_at, ends_at, paused_by.id, ended_by))
        else:  # met, cancelled or resumed at the instant it was paused: no time stood still
            self._refuse(paused_by, "the pause ended at the instant it began")
        chain.paused_by = None

    def _not_before(self, day: date, floor: date) -> date:
        """`day`, or the first working day from `floor` when it is earlier."""
        if day >= floor:
            return day
        return self.calendar.add(floor - timedelta(days=1), _WORKING_DAY)

    def _start(self, event: Event) -> None:
        if self.rule.restart == "supersede":
            # With `correlate_on`, a new start supersedes only the obligation it correlates with.
            for chain in self._targets(event, meeting=False):
                self._close(chain, cancelled_by=event)
        counted_from = self._counted_from(event)
        due_day = self._due_day(counted_from)
        if due_day is None:
            return
        self.open.append(
            _Chain(
                event.id,
                1,
                counted_from.occurred_at,
                counted_from.id,
                due_day,
                self._correlation(event),
            )
        )
        later = self.rule.later_repeat
        if later is not None and later.applies_to(event):
            started_on = self.calendar.local_date(event.occurred_at)
            self.later_from[event.id] = self.calendar.add(started_on, later.after)

    def _counted_from(self, start: Event) -> Event:
        """The event a start's duration counts from, which the obligation is opened by: the
        latest `counts_from` event at or before the start and since the rule last started, was
        met or was cancelled (an initial conference counts from the strategy discussion that
        began the enquiry, not one from an earlier episode), or else the start itself."""
        since, self.counting_since = self.counting_since, start.occurred_at
        counted_from = start
        for event in self.counting:
            if event.occurred_at > start.occurred_at:
                break
            if since is None or event.occurred_at > since:
                counted_from = event
        return counted_from

    def _correlation(self, event: Event) -> object:
        key = self.rule.correlate_on
        return event.data.get(key) if key else None

    def _resume(self, event: Event, position: int) -> None:
        """A start that claims a position continues the open chain rather than opening another.

        It meets the open obligations as a snapshot would; with none open, its chain starts
        here at that position, so only the next position is ever reported. This is how a
        chain whose start was never recorded (a care leaver's pathway plan) is picked up from
        its latest date.
        """
        targets = self._targets(event, meeting=True)
        for chain in targets:
            self._meet_from_snapshot(chain, event, position)
        if not targets:
            self._repeat(event.id, self._correlation(event), event, position)

    def _meet(self, chain: _Chain, event: Event) -> None:
        self.open.remove(chain)
        self.done.append(self._obligation(chain, met_by=event))
        self._repeat(chain.root_event, chain.correlation, event, chain.sequence)

    def _meet_from_snapshot(self, chain: _Chain, event: Event, position: int) -> None:
        """Meet with an event that says only "position `position` of the chain was reached
        here; what came before is unknown" (a latest date from a snapshot such as Annex A).

        It meets the open obligation only when that is certain: the obligation is at or past
        that position and the event is on time (had an unseen earlier event met it, it was
        met on time all the same), or a snapshot proved it still unmet after its due day (it
        was met late, by this event at the latest). Otherwise the obligation may have been met
        by an event the log does not hold, so it is dropped rather than reported overdue, late
        or cancelled. The chain carries on from the event either way.
        """
        self.open.remove(chain)
        on_time = self.calendar.local_date(event.occurred_at) <= chain.day_in_force
        if chain.proven_missed or (chain.sequence >= position and on_time):
            self.done.append(self._obligation(chain, met_by=event, met_at_latest=True))
        self._repeat(chain.root_event, chain.correlation, event, max(chain.sequence, position))

    def _repeat(self, root_event: str, correlation: object, event: Event, reached: int) -> None:
        """Open the position after `reached`, at the meeting event, one interval later."""
        repeat = self.rule.repeat
        if not repeat:
            return
        index = min(reached - 1, len(repeat) - 1)
        day = self.calendar.local_date(event.occurred_at)
        interval, token = repeat[index], self.repeat_tokens[index]
        # The event that begins an interval sets it: under reg. 28 a visit in a placement's
        # first year sets 6 weeks, one on or after its first anniversary 3 months.
        later_from = self.later_from.get(root_event)
        if later_from is not None and day >= later_from and self.later_interval:
            interval, token = self.later_interval
        self.open.append(
            _Chain(
                root_event,
                reached + 1,
                event.occurred_at,
                event.id,
                self.deadlines.due_day_after(day, interval, token),
                correlation,
            )
        )

    def _close(self, chain: _Chain, *, cancelled_by: Event) -> None:
        self.open.remove(chain)
        if not chain.unseen:  # it may have been met before, by an event the log lacks
            self.done.append(self._obligation(chain, cancelled_by=cancelled_by))

    def observe(self, snapshot: Event) -> None:
        """What a snapshot says of the open positions.

        One that could not show an event type meeting or cancelling the rule (a missing
        column, an unreadable cell) leaves them unjudged: they may have been met or cancelled
        by what it could not show, so they are reported only once an event settles them for
        certain (a meeting on time) and are otherwise dropped. One that shows the latest day
        of every type meeting the rule, none after a position opened, proves the position
        still unmet on its own day; after the due day, that position was missed, and the
        event that next meets it met it late (by then at the latest), even one that says only
        "the latest date".
        """
        rule = self.rule
        unseen = snapshot.data.get(UNSEEN_KEY)
        if isinstance(unseen, list) and not rule.evidence_types.isdisjoint(unseen):
            for chain in self.open:
                chain.unseen = True
            return
        latest = snapshot.data.get(LATEST_KEY)
        met_types = rule.met_types
        if not isinstance(latest, dict) or not met_types <= latest.keys():
            return
        last_days: list[date | None] = []
        for value in (latest[t] for t in met_types):
            day = None if value is None else parse_day_or_instant(value)
            if value is not None and day is None:
                return
            last_days.append(self.calendar.local_date(day) if isinstance(day, datetime) else day)
        today = self.calendar.local_date(snapshot.occurred_at)
        for chain in self.open:
            opened = self.calendar.local_date(chain.opened_at)
            if chain.day_in_force < today and all(d is None or d <= opened for d in last_days):
                chain.proven_missed, chain.unseen = True, False

    def finish(self) -> list[Obligation]:
        return self.done + [self._obligation(c) for c in self.open if not c.unseen]


def _position(event: Event) -> str:
    sequence = target_sequence(event.data)
    return f" at position {sequence}" if sequence is not None else ""


def _after_pauses(instant: datetime, pauses: Sequence[Pause]) -> datetime:
    """An instant moved to the end of the pause it falls in: no warning while paused."""
    for pause in pauses:
        if pause.started_at <= instant < pause.ends_at:
            instant = pause.ends_at
    return instant


def _booked_days(schedules: Sequence[Event], calendar: Calendar) -> list[tuple[datetime, date]]:
    """Each booking's time and the local day it books, read once for all of a rule's obligations;
    bookings without a readable day are left out."""
    booked: list[tuple[datetime, date]] = []
    for event in schedules:
        day = parse_day_or_instant(event.data.get("scheduled_for"))
        if day is not None:
            booked.append(
                (event.occurred_at, calendar.local_date(day) if isinstance(day, datetime) else day)
            )
    return booked


def _at_risk_periods(
    obligation: Obligation,
    rule: Rule,
    calendar: Calendar,
    schedules: Sequence[tuple[datetime, date]],
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
    for booked_at, booked_day in schedules:
        if booked_at < end and booked_day > opened_day:
            bookings.append((max(booked_at, obligation.opened_at), booked_day > due_day))

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
    snapshots = [(e, _SNAPSHOT) for e in by_type.get(SNAPSHOT_TYPE, ())]
    clocks, without_effect = _clock_events_by_rule(by_type, ruleset)
    obligations: list[Obligation] = []
    for rule in ruleset.rules:
        relevant = [
            (e, p)
            for event_type in rule.named_types
            if event_type in by_type
            for e in by_type[event_type]
            if (p := _phase(rule, e)) != _OTHER
        ]
        clock = clocks.get(rule.id, [])
        if not relevant:
            without_effect += [NoEffect(e.id, f"no deadline of rule {rule.id!r}") for e in clock]
            continue
        relevant += snapshots
        relevant += [(e, _CLOCK) for e in clock]
        relevant.sort(key=lambda ep: (ep[0].occurred_at, ep[1], ep[0].id))
        counting = sorted(
            (
                e
                for event_type in {m.type for m in rule.counts_from}
                for e in by_type.get(event_type, ())
                if _matches_any(rule.counts_from, e)
            ),
            key=lambda e: (e.occurred_at, e.id),
        )
        deriver = _RuleDeriver(rule, ruleset, case_id, counting)
        for event, phase in relevant:
            deriver.apply(event, phase)
        derived = deriver.finish()
        without_effect += deriver.no_effect
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
            booked = _booked_days(schedules, ruleset.calendar)
            derived = [
                replace(o, at_risk_periods=_at_risk_periods(o, rule, ruleset.calendar, booked))
                for o in derived
            ]
        obligations.extend(derived)
    obligations.sort(key=lambda o: (o.opened_at, o.rule_id, o.sequence, o.id))
    return CaseState(
        case_id,
        worker_id,
        team_id,
        status,
        tuple(obligations),
        open_periods(log),
        tuple(sorted(without_effect, key=lambda n: n.event_id)),
    )


def _clock_events_by_rule(
    by_type: dict[str, list[Event]], ruleset: Ruleset
) -> tuple[dict[str, list[Event]], list[NoEffect]]:
    """Events about deadlines' clocks by the rule they name, and those no rule can take (none
    by that id, or one that allows no extension or pause): the ruleset may have changed since
    they were posted."""
    by_rule: dict[str, list[Event]] = {}
    refused: list[NoEffect] = []
    for event_type in CLOCK_EVENT_TYPES:
        for event in by_type.get(event_type, ()):
            refusal = clock_refusal(event, ruleset)
            if refusal is not None:
                refused.append(NoEffect(event.id, refusal.detail))
            else:
                by_rule.setdefault(str(event.data["rule_id"]), []).append(event)
    return by_rule, refused
