"""Properties of derivation over generated case logs, and status checked against docs/rules.md
(Date arithmetic).

Logs are either any built-in events with valid data at instants drawn from a small pool (so
events often share an instant), or episodes of case work (a plan, then visits, reviews and
bookings days or weeks apart, so chains repeat). Instants fall in 2025-2026, some at 00:00
local as plain dates would be; ids are unique. Some events come as Annex A rows do: imported,
and claiming a chain position in `data.sequence` (docs/rules.md), now and then with a value
that is not an integer from 2 and so claims nothing.
"""

from __future__ import annotations

import calendar as month_lengths
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from builders import ADULTS, CASE_ID, CHILDREN, LONDON
from hypothesis import example, given, settings
from hypothesis import strategies as st

from service.domain.calendar import Duration
from service.domain.derive import Obligation, derive_case, obligation_id
from service.domain.events import (
    BUILTIN_EVENT_TYPES,
    REFERRAL_OUTCOMES,
    SECTION47_OUTCOMES,
    Event,
    check_builtin_data,
    parse_day_or_instant,
)
from service.domain.rules import Rule, Ruleset
from service.domain.status import (
    Status,
    escalation_level,
    status_at,
    working_days_overdue,
)

# The children's rules as a local authority might make them all extendable and pausable, so
# the events about deadlines' clocks act (on the built-in rules they have no effect).
CLOCKED = Ruleset(
    id="children-clocked",
    calendar=CHILDREN.calendar,
    rules=tuple(
        replace(
            r, max_extension=Duration(10, "working_days"), max_pause=Duration(20, "working_days")
        )
        for r in CHILDREN.rules
    ),
)
RULESETS = [pytest.param(CHILDREN, id="children"), pytest.param(ADULTS, id="adults")]
WITH_CLOCKS = [*RULESETS, pytest.param(CLOCKED, id="children-clocked")]
PROPERTY = settings(max_examples=100, deadline=None)

# Generating case logs

TASK_IDS = ("T-1", "T-2", "T-3")
FIRST_DAY, LAST_DAY = date(2025, 1, 1), date(2026, 12, 31)


def _local_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=LONDON).astimezone(UTC)


def utc_instants(first: datetime, last: datetime) -> st.SearchStrategy[datetime]:
    """Aware instants to the second (the store keeps microseconds, but CMSs send seconds)."""
    seconds = int((last - first).total_seconds())
    return st.integers(0, seconds).map(lambda s: first + timedelta(seconds=s))


instants = st.one_of(
    st.dates(FIRST_DAY, LAST_DAY).map(_local_midnight),
    utc_instants(datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, tzinfo=UTC)),
)
days_as_text = st.dates(FIRST_DAY, date(2027, 6, 30)).map(date.isoformat)
day_or_instant_text = st.one_of(
    days_as_text,
    utc_instants(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 6, 30, tzinfo=UTC)).map(
        lambda t: t.isoformat().replace("+00:00", "Z")
    ),
)
DATA: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "referral_decision_made": st.fixed_dictionaries(
        {"outcome": st.sampled_from(REFERRAL_OUTCOMES)}
    ),
    "section47_completed": st.fixed_dictionaries({"outcome": st.sampled_from(SECTION47_OUTCOMES)}),
    "icpc_held": st.fixed_dictionaries({"plan": st.booleans()}),
    "review_scheduled": st.fixed_dictionaries(
        {
            "review": st.sampled_from(("cp-review", "cla-review")),
            "scheduled_for": day_or_instant_text,
        }
    ),
    "task_due": st.fixed_dictionaries(
        {
            "task_id": st.sampled_from(TASK_IDS),
            "due_at": day_or_instant_text,
            "title": st.just("Update the chronology"),
        }
    ),
    "task_completed": st.fixed_dictionaries({"task_id": st.sampled_from(TASK_IDS)}),
}
# Events about a deadline's clock (docs/rules.md, Why a deadline is late), naming any rule.
RULE_IDS = sorted({r.id for r in (*CHILDREN.rules, *ADULTS.rules)})
REASON_CODES = [code for code, _ in CHILDREN.reasons]
_NAMED = {"rule_id": st.sampled_from(RULE_IDS)}
_POSITION = {"sequence": st.integers(1, 3)}
DATA |= {
    "delay_reason_recorded": st.fixed_dictionaries(
        {**_NAMED, "reason": st.sampled_from(REASON_CODES)},
        optional={**_POSITION, "note": st.just("Family away")},
    ),
    "deadline_extended": st.fixed_dictionaries(
        {**_NAMED, "reason": st.sampled_from(REASON_CODES), "authorised_by": st.just("M-1")},
        optional=_POSITION,
    ).flatmap(
        lambda data: st.one_of(
            days_as_text.map(lambda day: {**data, "due_on": day}),
            st.sampled_from(("1 working day", "5 working days", "10 working days", "2 weeks")).map(
                lambda by: {**data, "extend_by": by}
            ),
        )
    ),
    "deadline_paused": st.fixed_dictionaries(_NAMED, optional=_POSITION),
    "deadline_resumed": st.fixed_dictionaries(_NAMED, optional=_POSITION),
}
CLOCK_TYPES = ("delay_reason_recorded", "deadline_extended", "deadline_paused", "deadline_resumed")
# What an Annex A row adds to an event: its source, and for a latest review or visit the
# position it claims; a sequence of 1, 0, text, a bool or a float claims nothing.
sequences = st.one_of(st.integers(2, 6), st.sampled_from((1, 0, "2", True, 2.0)))
snapshot_marks = st.fixed_dictionaries(
    {}, optional={"source": st.just("annex-a"), "sequence": sequences}
)
# Closing a case cancels everything, so it is drawn less often than the facts that build a log.
COMMON_TYPES = sorted(BUILTIN_EVENT_TYPES - {"case_closed"})
event_ids = st.text("abcdefghij0123456789-:", min_size=1, max_size=8)


def new_event(draw: st.DrawFn, event_id: str, event_type: str, at: datetime) -> Event:
    data = draw(DATA.get(event_type, st.just({})))
    if draw(st.integers(0, 2)) == 0 and event_type not in CLOCK_TYPES:
        data = {**data, **draw(snapshot_marks)}
    assert check_builtin_data(event_type, data) == []
    return Event(
        id=event_id,
        type=event_type,
        case_id=CASE_ID,
        occurred_at=at,
        worker_id=draw(st.none() | st.sampled_from(("W-1", "W-2"))),
        team_id=draw(st.none() | st.sampled_from(("T-1", "T-2"))),
        data=data,
    )


@st.composite
def mixed_logs(draw: st.DrawFn, max_events: int) -> list[Event]:
    """Any built-in events in any order, at instants drawn from a small pool."""
    pool = draw(st.lists(instants, min_size=1, max_size=12))
    ids = draw(st.lists(event_ids, min_size=1, max_size=max_events, unique=True))
    log = []
    for event_id in ids:
        # Closing a case cancels everything, so it is drawn less often than other facts.
        closing = draw(st.integers(0, 19)) == 0
        event_type = "case_closed" if closing else draw(st.sampled_from(COMMON_TYPES))
        log.append(new_event(draw, event_id, event_type, draw(st.sampled_from(pool))))
    return log


# What follows each opening event in real case work, so chains repeat and reviews get booked.
EPISODES: dict[str, tuple[str, ...]] = {
    "referral_received": (
        "referral_decision_made",
        "contact_made",
        "child_seen",
        "assessment_completed",
        "referral_received",
    ),
    "section47_started": ("section47_completed", "icpc_held", "strategy_discussion_held"),
    "child_protection_plan_started": (
        "child_visited",
        "child_visited",
        "core_group_held",
        "cp_review_held",
        "review_scheduled",
        "child_protection_plan_ended",
    ),
    "became_looked_after": (
        "placement_started",
        "child_visited",
        "cla_review_held",
        "review_scheduled",
        "ceased_looked_after",
    ),
    "pathway_plan_agreed": ("pathway_plan_reviewed",),
    "care_plan_agreed": ("care_plan_reviewed", "care_plan_reviewed", "care_plan_agreed"),
    "safeguarding_concern_received": ("s42_decision_made", "safeguarding_concern_received"),
    "task_due": ("task_completed", "task_due"),
}
# Any episode may see its deadlines given reasons, extended, paused and resumed.
EPISODES = {opening: (*follow_ups, *CLOCK_TYPES) for opening, follow_ups in EPISODES.items()}
# The rules each opening event starts, for the clock events that follow it to name.
STARTED_BY = {
    opening: sorted(
        {
            r.id
            for r in (*CHILDREN.rules, *ADULTS.rules)
            if any(m.type == opening for m in r.starts_on)
        }
    )
    for opening in EPISODES
}
REVIEW_OF = {"child_protection_plan_started": "cp-review", "became_looked_after": "cla-review"}
LAST_INSTANT = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)


@st.composite
def episodic_logs(draw: st.DrawFn, max_events: int) -> list[Event]:
    """Episodes of case work: an opening event, then what follows it days or weeks apart."""
    ids = iter(draw(st.lists(event_ids, min_size=max_events, max_size=max_events, unique=True)))
    log: list[Event] = []
    for opening in draw(st.lists(st.sampled_from(sorted(EPISODES)), min_size=1, max_size=4)):
        at = draw(instants)
        log.append(new_event(draw, next(ids), opening, at))
        for _ in range(draw(st.integers(0, max_events // 4))):
            # A gap of 0 puts two facts at the same instant, as plain dates often do.
            at += timedelta(days=draw(st.sampled_from((0, 1, 3, 7, 10, 14, 30, 60, 90, 180))))
            follow_up = draw(st.sampled_from(EPISODES[opening]))
            if at > LAST_INSTANT or len(log) >= max_events - 2:
                break
            event = new_event(draw, next(ids), follow_up, at)
            if follow_up == "review_scheduled":
                ahead = draw(st.integers(1, 200))
                booked_for = (local_day(at) + timedelta(days=ahead)).isoformat()
                review = REVIEW_OF[opening]
                event = replace(event, data={"review": review, "scheduled_for": booked_for})
            elif follow_up in CLOCK_TYPES:
                # About one of the deadlines the episode started.
                rule_id = draw(st.sampled_from(STARTED_BY[opening]))
                event = replace(event, data={**event.data, "rule_id": rule_id})
            elif draw(st.booleans()):
                # A latest visit or review as Annex A gives it: the chain position it claims.
                event = replace(event, data={**event.data, "sequence": draw(st.integers(2, 4))})
            log.append(event)
    if draw(st.booleans()):
        log.append(new_event(draw, next(ids), "case_closed", draw(instants)))
    return log


def case_logs(max_events: int = 40) -> st.SearchStrategy[list[Event]]:
    return mixed_logs(max_events) | episodic_logs(max_events)


def derive(log: list[Event], ruleset: Ruleset) -> tuple[Obligation, ...]:
    return derive_case(CASE_ID, log, ruleset).obligations


def involves(rule: Rule, event: Event) -> bool:
    if event.type in CLOCK_TYPES:
        return event.data.get("rule_id") == rule.id
    matchers = (
        *rule.starts_on,
        *rule.counts_from,
        *rule.met_by,
        *rule.cancelled_by,
        *rule.scheduled_by,
    )
    return any(m.matches(event) for m in matchers)


def claims(event: Event) -> int | None:
    """docs/rules.md: the chain position an event claims, `data.sequence` as an integer from 2."""
    value = event.data.get("sequence")
    return value if type(value) is int and value >= 2 else None


def starts(rule: Rule, event: Event) -> bool:
    return any(m.matches(event) for m in rule.starts_on)


# (1)-(3): order, repetition and voids


@pytest.mark.parametrize("ruleset", WITH_CLOCKS)
@PROPERTY
@given(data=st.data())
def test_any_arrival_order_derives_the_same_obligations(ruleset: Ruleset, data: Any) -> None:
    log = data.draw(case_logs())
    arrived = data.draw(st.permutations(log))

    assert derive(arrived, ruleset) == derive(log, ruleset)
    assert derive_case(CASE_ID, arrived, ruleset) == derive_case(CASE_ID, log, ruleset)


@pytest.mark.parametrize("ruleset", WITH_CLOCKS)
@PROPERTY
@given(log=case_logs())
def test_deriving_twice_gives_identical_results(ruleset: Ruleset, log: list[Event]) -> None:
    assert derive_case(CASE_ID, list(log), ruleset) == derive_case(CASE_ID, list(log), ruleset)


@pytest.mark.parametrize("ruleset", WITH_CLOCKS)
@PROPERTY
@given(data=st.data())
def test_voiding_an_event_equals_never_having_posted_it(ruleset: Ruleset, data: Any) -> None:
    log = data.draw(case_logs())
    voided = data.draw(st.sampled_from(log))
    remaining = [e for e in log if e is not voided]
    never_posted = data.draw(st.permutations(remaining))

    assert derive(remaining, ruleset) == derive(never_posted, ruleset)


@pytest.mark.parametrize("ruleset", WITH_CLOCKS)
@PROPERTY
@given(data=st.data())
def test_voiding_an_event_leaves_the_rules_it_plays_no_part_in_untouched(
    ruleset: Ruleset, data: Any
) -> None:
    log = data.draw(case_logs())
    voided = data.draw(st.sampled_from(log))
    before = derive(log, ruleset)

    after = derive([e for e in log if e is not voided], ruleset)

    for rule in ruleset.rules:
        if not involves(rule, voided):
            assert [o for o in after if o.rule_id == rule.id] == [
                o for o in before if o.rule_id == rule.id
            ]


@pytest.mark.parametrize("ruleset", WITH_CLOCKS)
@PROPERTY
@given(log=case_logs())
def test_a_voided_start_leaves_no_chain_rooted_at_it(ruleset: Ruleset, log: list[Event]) -> None:
    starts = [e for e in log if any(involves(r, e) for r in ruleset.rules)]
    for voided in starts[:3]:
        after = derive([e for e in log if e is not voided], ruleset)

        assert all(o.opened_by_event != voided.id for o in after)
        assert all(o.met_by_event != voided.id for o in after)
        assert all(o.cancelled_by_event != voided.id for o in after)


# Invariants of every derived obligation


@pytest.mark.parametrize("ruleset", WITH_CLOCKS)
@PROPERTY
@given(log=case_logs())
def test_every_obligation_closes_at_most_once_and_never_before_it_opens(
    ruleset: Ruleset, log: list[Event]
) -> None:
    for obligation in derive(log, ruleset):
        assert obligation.met_at is None or obligation.cancelled_at is None
        assert obligation.closed_at is None or obligation.closed_at >= obligation.opened_at
        assert obligation.due_at > obligation.opened_at or obligation.rule_id == "scheduled-task"


@pytest.mark.parametrize("ruleset", RULESETS)
@PROPERTY
@given(log=case_logs())
def test_each_repeat_opens_at_the_event_that_reached_the_position_before_it(
    ruleset: Ruleset, log: list[Event]
) -> None:
    """A repeat opens where its predecessor was met; after an event claiming position N, the
    position it opens is past N, and a predecessor still listed was met by that event."""
    by_event = {e.id: e for e in log}
    obligations = derive(log, ruleset)
    by_id = {o.id: o for o in obligations}
    assert len(by_id) == len(obligations)
    for later in (o for o in obligations if o.sequence > 1):
        opener = by_event[later.opened_by_event]
        root = chain_root(later, log)
        earlier = by_id.get(obligation_id(CASE_ID, later.rule_id, root.id, later.sequence - 1))
        claimed = claims(opener)
        if claimed is None:
            assert earlier is not None
        else:
            assert later.sequence > claimed
        if earlier is not None:
            assert earlier.met_by_event == opener.id
            assert earlier.met_at == later.opened_at


def spec_phase(rule: Rule, event: Event) -> int:
    """At one instant, events that start obligations apply first, then meet, then cancel."""
    if any(m.matches(event) for m in rule.starts_on):
        return 0
    return 1 if any(m.matches(event) for m in rule.met_by) else 2


def closes(rule: Rule, event: Event, opening: Event) -> bool:
    """Whether `event`, applied while the obligation opened by `opening` is open, closes it:
    meets it, drops it (a claimed position, docs/rules.md) or cancels it.

    An event that starts the rule is a start first: it meets the open obligation only when it
    claims a position, and otherwise supersedes it or leaves it open.
    """
    key = rule.correlate_on
    same = key is None or event.data.get(key) == opening.data.get(key)
    names_none = event.data.get(key or "") is None
    if starts(rule, event):
        if claims(event) is not None:
            return same
        return rule.restart == "supersede" and (same or names_none)
    if any(m.matches(event) for m in rule.met_by):
        return same
    return any(m.matches(event) for m in rule.cancelled_by) and (same or names_none)


def chain_root(obligation: Obligation, log: list[Event]) -> Event:
    """The event that opened the obligation's chain: the one its id was made from (an id
    is the case, the rule, the event that opened the chain and the position)."""
    return next(
        e
        for e in log
        if obligation.id == obligation_id(CASE_ID, obligation.rule_id, e.id, obligation.sequence)
    )


@pytest.mark.parametrize("ruleset", WITH_CLOCKS)
@PROPERTY
@given(log=case_logs())
def test_an_obligation_left_open_has_no_closing_event_applied_after_it_opened(
    ruleset: Ruleset, log: list[Event]
) -> None:
    by_id = {e.id: e for e in log}
    obligations = derive(log, ruleset)
    for obligation in (o for o in obligations if o.closed_at is None):
        rule = ruleset.rule(obligation.rule_id)
        assert rule is not None
        opener = by_id[obligation.opened_by_event]
        root = chain_root(obligation, log)
        # A first position is open from its start, even when it counts from an earlier event
        # (`counts_from`); a repeat from the event that met its predecessor.
        opened = max((e.occurred_at, spec_phase(rule, e), e.id) for e in (opener, root))
        for event in log:
            if (event.occurred_at, spec_phase(rule, event), event.id) > opened:
                assert not closes(rule, event, root), event


@pytest.mark.parametrize("ruleset", WITH_CLOCKS)
@PROPERTY
@given(log=case_logs())
def test_every_obligation_is_closed_by_an_event_that_can_close_it_at_its_instant(
    ruleset: Ruleset, log: list[Event]
) -> None:
    by_id = {e.id: e for e in log}
    obligations = derive(log, ruleset)
    for obligation in obligations:
        rule = ruleset.rule(obligation.rule_id)
        assert rule is not None
        root = chain_root(obligation, log)
        if obligation.met_by_event is not None:
            meeting = by_id[obligation.met_by_event]
            # docs/rules.md: a start claiming a position meets the open obligation too.
            assert any(m.matches(meeting) for m in rule.met_by) or (
                starts(rule, meeting) and claims(meeting) is not None
            )
            assert closes(rule, meeting, root)
            assert obligation.met_at == meeting.occurred_at
        if obligation.cancelled_by_event is not None:
            cancelling = by_id[obligation.cancelled_by_event]
            assert not any(m.matches(cancelling) for m in rule.met_by)
            assert closes(rule, cancelling, root)
            assert obligation.cancelled_at == cancelling.occurred_at


# Claimed positions (docs/rules.md, `data.sequence`)


@pytest.mark.parametrize("ruleset", WITH_CLOCKS)
@PROPERTY
@given(log=case_logs())
def test_an_event_claiming_a_position_meets_only_on_time_and_at_or_past_that_position(
    ruleset: Ruleset, log: list[Event]
) -> None:
    by_id = {e.id: e for e in log}
    for obligation in derive(log, ruleset):
        meeting = by_id.get(obligation.met_by_event or "")
        claimed = claims(meeting) if meeting is not None else None
        if claimed is not None:
            assert obligation.sequence >= claimed
            assert obligation.met_at is not None
            assert obligation.met_at <= obligation.due_at


CP_VISIT = CHILDREN.rule("cp-visit")


@PROPERTY
@given(
    opened=st.dates(FIRST_DAY, LAST_DAY),
    visits=st.integers(0, 3),
    claim=st.integers(2, 6),
    days_from_due=st.integers(-3, 2),
)
@example(opened=date(2026, 2, 2), visits=2, claim=2, days_from_due=0)
@example(opened=date(2026, 2, 2), visits=1, claim=2, days_from_due=-1)
def test_a_claimed_visit_meets_the_open_position_only_at_or_past_the_claim_and_on_time(
    opened: date, visits: int, claim: int, days_from_due: int
) -> None:
    """docs/rules.md: an event claiming position N meets the open obligation, at position P,
    when P >= N and the event is on its due day or before; otherwise it drops it. Either way
    position max(P, N) + 1 opens at the event."""
    assert CP_VISIT is not None
    is_working_day = CHILDREN.calendar.is_working_day
    plan = Event("plan", "child_protection_plan_started", CASE_ID, _local_midnight(opened))
    log = [plan]
    due_day = add_period(opened, CP_VISIT.due, is_working_day)
    for n in range(visits):
        log.append(Event(f"visit-{n}", "child_visited", CASE_ID, _local_midnight(due_day)))
        due_day = add_period(due_day, CP_VISIT.repeat[0], is_working_day)
    position = visits + 1
    day = due_day + timedelta(days=days_from_due)
    claimed_at = datetime.combine(day, time(21, 30), tzinfo=LONDON).astimezone(UTC)
    log.append(Event("snapshot", "child_visited", CASE_ID, claimed_at, data={"sequence": claim}))

    by_position = {o.sequence: o for o in derive(log, CHILDREN) if o.rule_id == "cp-visit"}

    met = position >= claim and day <= due_day
    after = max(position, claim) + 1
    assert set(by_position) == {*range(1, position), *([position] if met else []), after}
    if met:
        assert by_position[position].met_by_event == "snapshot"
    resumed = by_position[after]
    assert resumed.id == obligation_id(CASE_ID, "cp-visit", "plan", after)
    assert (resumed.opened_by_event, resumed.opened_at) == ("snapshot", claimed_at)
    assert resumed.due_at == end_of(add_period(day, CP_VISIT.repeat[0], is_working_day))


# (4): status at an instant, against docs/rules.md written out independently


def add_period(day: date, duration: Duration, is_working_day: Callable[[date], bool]) -> date:
    """The N-th working day after D (D never counts), or D plus that calendar period."""
    if duration.unit == "working_days":
        found = 0
        while found < duration.count:
            day += timedelta(days=1)
            found += is_working_day(day)
        return day
    if duration.unit == "months":
        months = day.year * 12 + day.month - 1 + duration.count
        year, month = divmod(months, 12)
        last = month_lengths.monthrange(year, month + 1)[1]
        return date(year, month + 1, min(day.day, last))
    return day + timedelta(days=duration.count * (7 if duration.unit == "weeks" else 1))


def working_days_back(day: date, count: int, is_working_day: Callable[[date], bool]) -> date:
    found = 0
    while found < count:
        day -= timedelta(days=1)
        found += is_working_day(day)
    return day


def start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=LONDON)


def end_of(day: date) -> datetime:
    return datetime.combine(day, time.max, tzinfo=LONDON)


def local_day(instant: datetime) -> date:
    return instant.astimezone(LONDON).date()


def spec_due_day(obligation: Obligation, rule: Rule, log: list[Event], ruleset: Ruleset) -> date:
    """The due day as docs/rules.md defines it, from the obligation's trigger."""
    is_working_day = ruleset.calendar.is_working_day
    if obligation.sequence > 1:
        interval = rule.repeat[min(obligation.sequence - 2, len(rule.repeat) - 1)]
        return add_period(local_day(obligation.opened_at), interval, is_working_day)
    if rule.due is not None:
        return add_period(local_day(obligation.opened_at), rule.due, is_working_day)
    opening = next(e for e in log if e.id == obligation.opened_by_event)
    value = parse_day_or_instant(opening.data[rule.due_from_data or ""])
    assert value is not None
    return local_day(value) if isinstance(value, datetime) else value


def spec_status(
    obligation: Obligation, at: datetime, due: datetime, warn: datetime | None
) -> Status:
    if obligation.cancelled_at is not None and obligation.cancelled_at <= at:
        return "cancelled"
    if obligation.met_at is not None and obligation.met_at <= at and obligation.met_at <= due:
        return "met"
    if obligation.met_at is not None and obligation.met_at <= at:
        return "met_late"
    if at > due:
        return "overdue"
    if warn is not None and at >= warn:
        return "due_soon"
    return "upcoming"


probe_instants = st.lists(
    st.integers(0, 4 * 366 * 86_400 * 10**6).map(
        lambda us: datetime(2024, 12, 1, tzinfo=UTC) + timedelta(microseconds=us)
    ),
    min_size=1,
    max_size=8,
)


@pytest.mark.parametrize("ruleset", RULESETS)
@PROPERTY
@given(log=case_logs(max_events=25), probes=probe_instants)
def test_status_at_agrees_with_the_spec_definition(
    ruleset: Ruleset, log: list[Event], probes: list[datetime]
) -> None:
    is_working_day = ruleset.calendar.is_working_day
    for obligation in derive(log, ruleset):
        rule = ruleset.rule(obligation.rule_id)
        assert rule is not None
        due_day = spec_due_day(obligation, rule, log, ruleset)
        due = end_of(due_day)
        warn = None
        if rule.warn_before is not None:
            assert rule.warn_before.unit == "working_days"
            warn = start_of(working_days_back(due_day, rule.warn_before.count, is_working_day))
        assert obligation.due_at == due
        thresholds = [end_of(add_period(due_day, d, is_working_day)) for d in rule.escalate_after]
        edges = [due, *thresholds, *([warn] if warn else [])]
        closings = [t for t in (obligation.met_at, obligation.cancelled_at) if t is not None]
        instants_to_check = [
            *probes,
            *closings,
            *edges,
            *(t + timedelta(microseconds=1) for t in edges),
            *(t - timedelta(microseconds=1) for t in edges),
        ]
        for at in instants_to_check:
            expected = spec_status(obligation, at, due, warn)
            assert status_at(obligation, at) == expected

            expected_level = sum(at > t for t in thresholds) if expected == "overdue" else 0
            assert escalation_level(obligation, at) == expected_level

            late_days = 0
            if expected == "overdue":
                day = due_day + timedelta(days=1)
                while day <= local_day(at):
                    late_days += is_working_day(day)
                    day += timedelta(days=1)
            assert working_days_overdue(obligation, at, ruleset.calendar) == late_days


# Events about deadlines' clocks (docs/rules.md, Why a deadline is late)


def without_snapshot_marks(log: list[Event]) -> list[Event]:
    """The log without Annex A's claims: a snapshot may drop a deadline it cannot judge,
    which rewrites the past by design (docs/rules.md, Snapshots)."""
    return [
        e
        if e.type in CLOCK_TYPES
        else replace(e, data={k: v for k, v in e.data.items() if k not in ("sequence", "source")})
        for e in log
    ]


@PROPERTY
@given(log=case_logs(), probes=probe_instants)
def test_status_as_of_an_instant_is_what_the_log_up_to_then_gave(
    log: list[Event], probes: list[datetime]
) -> None:
    """An extension, pause or resume recorded later never changes what was overdue, due soon
    or escalated at an earlier instant: reads with `as_of` keep their answer."""
    log = without_snapshot_marks(log)
    everything = {o.id: o for o in derive(log, CLOCKED)}
    for at in probes:
        then = {o.id: o for o in derive([e for e in log if e.occurred_at <= at], CLOCKED)}
        opened = {i for i, o in everything.items() if o.opened_at <= at}
        assert opened == {i for i, o in then.items() if o.opened_at <= at}
        for obligation_id_ in opened:
            now, before = everything[obligation_id_], then[obligation_id_]
            assert status_at(now, at) == status_at(before, at)
            assert escalation_level(now, at) == escalation_level(before, at)


@PROPERTY
@given(log=case_logs())
def test_an_agreed_date_is_later_than_the_rules_date_and_no_warning_falls_in_a_pause(
    log: list[Event],
) -> None:
    for obligation in derive(log, CLOCKED):
        if obligation.original_due_at is not None:
            assert obligation.extension is not None
            assert obligation.due_at > obligation.original_due_at
        for pause in obligation.pauses:
            assert pause.started_at < pause.ends_at
            warn_at = obligation.warn_at
            assert warn_at is None or not (pause.started_at <= warn_at < pause.ends_at)
            assert not pause.started_at <= obligation.due_at < pause.ends_at


@pytest.mark.parametrize("ruleset", RULESETS)
@PROPERTY
@given(log=case_logs())
def test_no_built_in_deadline_is_extended_or_paused(ruleset: Ruleset, log: list[Event]) -> None:
    for obligation in derive(log, ruleset):
        assert obligation.original_due_at is None
        assert obligation.pauses == ()
