"""Every deadline explains itself: the day counting started, the duration, each bank holiday
and closure skipped by name and date, and one sentence a manager can check by hand.

Expected dates are those of the published list of bank holidays in England and Wales:
Fri 25 Dec 2026 Christmas Day, Mon 28 Dec 2026 Boxing Day (substitute day), Fri 26 Mar 2027
Good Friday, Mon 29 Mar 2027 Easter Monday, Mon 31 Aug 2026 the summer bank holiday,
Thu 1 Jan 2026 New Year's Day. British Summer Time runs from 29 Mar to 25 Oct 2026 and from
28 Mar 2027.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from builders import CHILDREN, derive, event, only

from service.domain.calendar import CALENDAR_DATA_VERSION, Calendar
from service.domain.events import Event
from service.domain.explain import DayOff, Explanation, explain
from service.domain.rules import Ruleset


def explained(rule_id: str, *events: Event, ruleset: Ruleset = CHILDREN) -> Explanation:
    obligation = only(derive(list(events), ruleset), rule_id)
    rule = ruleset.rule(rule_id)
    assert rule is not None
    return explain(obligation, rule, ruleset.calendar, {e.id: e for e in events})


def test_a_deadline_across_the_summer_bank_holiday_names_it() -> None:
    found = explained("referral-decision", event("referral_received", "2026-08-28", id="R1"))
    assert found.sentence == (
        "Due by the end of Tue 1 Sep 2026: 1 working day after Fri 28 Aug 2026, "
        "skipping Mon 31 Aug (Late Summer Bank Holiday)."
    )
    assert found.days_off_skipped == (DayOff(date(2026, 8, 31), "Late Summer Bank Holiday"),)
    assert found.weekend_days_skipped == 2


def test_the_end_of_a_summer_day_is_an_hour_before_midnight_utc() -> None:
    found = explained("referral-decision", event("referral_received", "2026-08-28", id="R1"))
    assert found.due_at == datetime(2026, 9, 1, 22, 59, 59, 999999, tzinfo=UTC)
    assert found.due_local.isoformat() == "2026-09-01T23:59:59.999999+01:00"


def test_christmas_and_the_boxing_day_substitute_are_both_skipped() -> None:
    found = explained("referral-decision", event("referral_received", "2026-12-24", id="R1"))
    assert found.due_day == date(2026, 12, 29)
    assert [d.day for d in found.days_off_skipped] == [date(2026, 12, 25), date(2026, 12, 28)]
    assert "Christmas Day" in found.sentence
    assert "Mon 28 Dec (Boxing Day (observed))" in found.sentence


def test_easter_is_skipped_across_the_start_of_summer_time() -> None:
    found = explained("referral-decision", event("referral_received", "2027-03-25", id="R1"))
    assert found.due_day == date(2027, 3, 30)
    assert [d.reason for d in found.days_off_skipped] == ["Good Friday", "Easter Monday"]
    assert found.due_at == datetime(2027, 3, 30, 22, 59, 59, 999999, tzinfo=UTC)


def test_a_closure_day_is_skipped_and_named_as_a_closure() -> None:
    closed = replace(CHILDREN, calendar=Calendar(closures=[date(2026, 1, 2)]))
    found = explained(
        "referral-decision", event("referral_received", "2025-12-31", id="R1"), ruleset=closed
    )
    assert found.due_day == date(2026, 1, 5)
    assert found.days_off_skipped == (
        DayOff(date(2026, 1, 1), "New Year's Day"),
        DayOff(date(2026, 1, 2), "closure"),
    )
    assert found.calendar_closures == (date(2026, 1, 2),)


def test_a_calendar_duration_skips_nothing() -> None:
    found = explained("cp-review", event("child_protection_plan_started", "2026-03-02", id="P1"))
    assert found.sentence == "Due by the end of Tue 2 Jun 2026: 3 months after Mon 2 Mar 2026."
    assert found.working_days_counted is None
    assert found.days_off_skipped == ()


def test_it_names_the_rule_the_opening_event_and_the_calendar_data() -> None:
    found = explained("referral-decision", event("referral_received", "2026-08-28", id="R1"))
    assert (found.rule_id, found.opened_by_event, found.opened_by_type) == (
        "referral-decision",
        "R1",
        "referral_received",
    )
    assert found.counted_from == date(2026, 8, 28)
    assert found.duration == "1 working day"
    assert (found.calendar_region, found.calendar_timezone) == (
        "england-and-wales",
        "Europe/London",
    )
    assert found.calendar_data == CALENDAR_DATA_VERSION


def test_a_repeat_counts_from_the_visit_that_met_the_one_before() -> None:
    events = [
        event("child_protection_plan_started", "2026-03-02", id="P1"),
        event("child_visited", "2026-03-10", id="V1"),
    ]
    obligations = derive(events)
    second = next(o for o in obligations if o.rule_id == "cp-visit" and o.sequence == 2)
    rule = CHILDREN.rule("cp-visit")
    assert rule is not None
    found = explain(second, rule, CHILDREN.calendar, {e.id: e for e in events})
    assert found.sentence == (
        "Due by the end of Tue 24 Mar 2026: 10 working days after Tue 10 Mar 2026."
    )
    assert found.opened_by_type == "child_visited"
