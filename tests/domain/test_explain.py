"""Every deadline explains itself: the day counting started, the duration, each bank holiday
and closure skipped by name and date, and one sentence a manager can check by hand.

Expected dates and names are those of the published list of bank holidays in England and
Wales: Thu 1 Jan 2026 New Year's Day, Mon 31 Aug 2026 Summer bank holiday, Fri 25 Dec 2026
Christmas Day, Mon 28 Dec 2026 Boxing Day (substitute day), Fri 26 Mar 2027 Good Friday,
Mon 29 Mar 2027 Easter Monday, Mon 27 Dec 2027 Christmas Day (substitute day), Tue 28 Dec
2027 Boxing Day (substitute day). British Summer Time runs from 29 Mar to 25 Oct 2026 and
from 28 Mar 2027.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from builders import CHILDREN, derive, event, only

from service.domain.calendar import Calendar, Duration
from service.domain.events import Event
from service.domain.explain import DayOff, Explanation, explain
from service.domain.rules import Ruleset


def explained(rule_id: str, *events: Event, ruleset: Ruleset = CHILDREN) -> Explanation:
    obligation = only(derive(list(events), ruleset), rule_id)
    return explain(obligation, ruleset.rule(rule_id), ruleset.calendar)


def test_a_deadline_across_the_summer_bank_holiday_names_it() -> None:
    found = explained("referral-decision", event("referral_received", "2026-08-28"))
    assert found.sentence == (
        "Due by the end of Tue 1 Sep 2026: 1 working day after Fri 28 Aug 2026, "
        "skipping Mon 31 Aug (Summer bank holiday)."
    )
    assert found.days_off_skipped == (DayOff(date(2026, 8, 31), "Summer bank holiday"),)
    assert found.weekend_days_skipped == 2


def test_the_end_of_a_summer_day_is_an_hour_before_midnight_utc() -> None:
    found = explained("referral-decision", event("referral_received", "2026-08-28"))
    assert found.due_at == datetime(2026, 9, 1, 22, 59, 59, 999999, tzinfo=UTC)
    assert found.due_local.isoformat() == "2026-09-01T23:59:59.999999+01:00"


def test_christmas_and_the_boxing_day_substitute_are_both_skipped() -> None:
    found = explained("referral-decision", event("referral_received", "2026-12-24"))
    assert found.due_day == date(2026, 12, 29)
    assert found.days_off_skipped == (
        DayOff(date(2026, 12, 25), "Christmas Day"),
        DayOff(date(2026, 12, 28), "Boxing Day, substitute day"),
    )


def test_christmas_at_a_weekend_skips_both_substitute_days() -> None:
    found = explained("referral-decision", event("referral_received", "2027-12-24"))
    assert found.sentence == (
        "Due by the end of Wed 29 Dec 2027: 1 working day after Fri 24 Dec 2027, skipping "
        "Mon 27 Dec (Christmas Day, substitute day), Tue 28 Dec (Boxing Day, substitute day)."
    )
    assert found.weekend_days_skipped == 2


def test_easter_is_skipped_across_the_start_of_summer_time() -> None:
    found = explained("referral-decision", event("referral_received", "2027-03-25"))
    assert found.due_day == date(2027, 3, 30)
    assert [d.name for d in found.days_off_skipped] == ["Good Friday", "Easter Monday"]
    assert found.due_at == datetime(2027, 3, 30, 22, 59, 59, 999999, tzinfo=UTC)


def test_a_closure_day_is_skipped_and_named_as_a_closure() -> None:
    closed = replace(CHILDREN, calendar=Calendar(closures=[date(2026, 1, 2)]))
    found = explained("referral-decision", event("referral_received", "2025-12-31"), ruleset=closed)
    assert found.due_day == date(2026, 1, 5)
    assert found.days_off_skipped == (
        DayOff(date(2026, 1, 1), "New Year's Day"),
        DayOff(date(2026, 1, 2), "closure"),
    )


def test_a_calendar_duration_skips_nothing() -> None:
    found = explained("cp-review", event("child_protection_plan_started", "2026-03-02"))
    assert found.sentence == "Due by the end of Tue 2 Jun 2026: 3 months after Mon 2 Mar 2026."
    assert found.working_days_counted is None
    assert found.days_off_skipped == ()


def test_it_names_the_day_counting_started_and_the_duration() -> None:
    found = explained("first-contact", event("referral_received", "2026-08-28"))
    assert found.counted_from == date(2026, 8, 28)
    assert (found.duration, found.working_days_counted) == ("3 working days", 3)


def test_a_repeat_counts_from_the_visit_that_met_the_one_before() -> None:
    events = [
        event("child_protection_plan_started", "2026-03-02"),
        event("child_visited", "2026-03-10"),
    ]
    second = next(o for o in derive(events) if o.rule_id == "cp-visit" and o.sequence == 2)
    found = explain(second, CHILDREN.rule("cp-visit"), CHILDREN.calendar)
    assert found.sentence == (
        "Due by the end of Tue 24 Mar 2026: 10 working days after Tue 10 Mar 2026."
    )


def test_a_date_given_in_the_event_is_said_to_be_so() -> None:
    found = explained(
        "scheduled-task", event("task_due", "2026-03-02", task_id="A", due_at="2026-03-13")
    )
    assert found.sentence == (
        "Due by the end of Fri 13 Mar 2026: the date given in the event's due_at."
    )
    assert (found.counted_from, found.duration) == (None, None)


def test_a_day_the_rules_in_force_no_longer_give_is_said_to_come_from_earlier_rules() -> None:
    obligation = only(derive([event("referral_received", "2026-08-28")]), "referral-decision")
    decision = CHILDREN.rule("referral-decision")
    assert decision is not None
    changed = replace(decision, due=Duration(2, "working_days"))
    found = explain(obligation, changed, CHILDREN.calendar)
    assert found.sentence == (
        "Due by the end of Tue 1 Sep 2026, as derived under earlier rules or calendar data: "
        "the rules in force now do not give this day."
    )
    assert found.days_off_skipped == ()


def test_a_rule_no_longer_in_the_ruleset_leaves_the_day_unexplained_but_stated() -> None:
    obligation = only(derive([event("referral_received", "2026-08-28")]), "referral-decision")
    found = explain(obligation, None, CHILDREN.calendar)
    assert found.sentence.startswith("Due by the end of Tue 1 Sep 2026, as derived under")
