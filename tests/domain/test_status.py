"""Status, escalation, working days overdue and at-risk at an instant
(docs/rules.md and docs/webhooks.md).

The assessment opened by a referral on Monday 2 March 2026 is due Thursday 7 May 2026 (BST),
warns from 00:00 on 29 April (5 working days before, skipping the 4 May bank holiday) and
escalates after the end of 14 May (5 working days) and 29 May (15 working days, skipping
25 May).
"""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from builders import CHILDREN, derive, end_of, event, local, of_rule, only

from service.domain.derive import Obligation
from service.domain.events import Event
from service.domain.status import (
    OPEN_STATUSES,
    STATUSES,
    escalation_level,
    is_at_risk,
    is_missed,
    missed_then_cancelled,
    status_at,
    working_days_overdue,
)

CALENDAR = CHILDREN.calendar
MICROSECOND = timedelta(microseconds=1)


def assessment() -> Obligation:
    return only(derive([event("referral_received", "2026-03-02")]), "assessment-completion")


ASSESSMENT = assessment()


def test_the_spec_statuses_are_the_six_names() -> None:
    assert set(STATUSES) == {"upcoming", "due_soon", "overdue", "met", "met_late", "cancelled"}
    assert frozenset({"upcoming", "due_soon", "overdue"}) == OPEN_STATUSES


# Open obligations over time


def test_an_open_obligation_is_upcoming_until_its_warning_day_starts() -> None:
    assert status_at(ASSESSMENT, local("2026-04-28", "23:59")) == "upcoming"


def test_an_open_obligation_is_due_soon_from_00_00_local_on_its_warning_day() -> None:
    assert status_at(ASSESSMENT, local("2026-04-29") - MICROSECOND) == "upcoming"
    assert status_at(ASSESSMENT, local("2026-04-29")) == "due_soon"


def test_an_open_obligation_is_still_due_soon_at_the_last_microsecond_of_its_due_day() -> None:
    assert status_at(ASSESSMENT, end_of("2026-05-07")) == "due_soon"


def test_an_open_obligation_is_overdue_once_its_due_day_has_ended() -> None:
    assert status_at(ASSESSMENT, end_of("2026-05-07") + MICROSECOND) == "overdue"


def test_an_obligation_without_warn_before_goes_straight_from_upcoming_to_overdue() -> None:
    silent = replace(ASSESSMENT, warn_at=None)

    assert status_at(silent, end_of("2026-05-07")) == "upcoming"
    assert status_at(silent, end_of("2026-05-07") + MICROSECOND) == "overdue"


# Closed obligations, in the order docs/rules.md gives


def test_an_obligation_met_on_its_due_day_is_met() -> None:
    met = replace(ASSESSMENT, met_at=end_of("2026-05-07"))

    assert status_at(met, end_of("2026-05-07")) == "met"


def test_an_obligation_met_after_its_due_day_is_met_late() -> None:
    late = replace(ASSESSMENT, met_at=end_of("2026-05-07") + MICROSECOND)

    assert status_at(late, local("2026-06-01")) == "met_late"


def test_an_obligation_met_late_is_overdue_until_the_moment_it_is_met() -> None:
    late = replace(ASSESSMENT, met_at=local("2026-05-12", "10:00"))

    assert status_at(late, local("2026-05-12", "09:59")) == "overdue"
    assert status_at(late, local("2026-05-12", "10:00")) == "met_late"


def test_an_obligation_met_early_shows_its_open_status_before_the_meeting() -> None:
    met = replace(ASSESSMENT, met_at=local("2026-04-30", "10:00"))

    assert status_at(met, local("2026-04-30", "09:00")) == "due_soon"
    assert status_at(met, local("2026-04-30", "10:00")) == "met"


def test_a_cancelled_obligation_is_cancelled_from_its_cancellation() -> None:
    cancelled = replace(ASSESSMENT, cancelled_at=local("2026-05-20"))

    assert status_at(cancelled, local("2026-05-20") - MICROSECOND) == "overdue"
    assert status_at(cancelled, local("2026-05-20")) == "cancelled"


def test_cancelled_comes_before_met_in_the_spec_order() -> None:
    both = replace(ASSESSMENT, met_at=local("2026-04-01"), cancelled_at=local("2026-04-02"))

    assert status_at(both, local("2026-04-01", "12:00")) == "met"
    assert status_at(both, local("2026-04-02")) == "cancelled"


# Escalation


def test_an_obligation_not_yet_overdue_has_escalation_level_0() -> None:
    assert escalation_level(ASSESSMENT, end_of("2026-05-07")) == 0


def test_an_overdue_obligation_has_level_0_until_its_first_threshold_day_ends() -> None:
    assert escalation_level(ASSESSMENT, end_of("2026-05-07") + MICROSECOND) == 0
    assert escalation_level(ASSESSMENT, end_of("2026-05-14")) == 0


def test_escalation_level_1_starts_at_the_end_of_the_first_threshold_day() -> None:
    assert escalation_level(ASSESSMENT, end_of("2026-05-14") + MICROSECOND) == 1
    assert escalation_level(ASSESSMENT, end_of("2026-05-29")) == 1


def test_escalation_level_2_starts_at_the_end_of_the_second_threshold_day() -> None:
    assert escalation_level(ASSESSMENT, end_of("2026-05-29") + MICROSECOND) == 2
    assert escalation_level(ASSESSMENT, local("2027-01-01")) == 2


def test_a_met_obligation_is_not_escalated() -> None:
    late = replace(ASSESSMENT, met_at=local("2026-05-20"))

    assert escalation_level(late, local("2026-06-15")) == 0


# Working days overdue


def test_an_obligation_not_overdue_is_0_working_days_overdue() -> None:
    assert working_days_overdue(ASSESSMENT, end_of("2026-05-07"), CALENDAR) == 0


def test_the_first_moment_overdue_is_1_working_day_overdue() -> None:
    assert working_days_overdue(ASSESSMENT, end_of("2026-05-07") + MICROSECOND, CALENDAR) == 1


def test_a_weekend_adds_no_working_days_overdue() -> None:
    assert working_days_overdue(ASSESSMENT, local("2026-05-10", "18:00"), CALENDAR) == 1


def test_working_days_overdue_counts_to_the_local_date_of_the_instant() -> None:
    # 23:30 UTC on Monday 11 May is 00:30 BST on Tuesday 12 May: 8, 11 and 12 May.
    at = datetime(2026, 5, 11, 23, 30, tzinfo=UTC)

    assert working_days_overdue(ASSESSMENT, at, CALENDAR) == 3


def test_bank_holidays_do_not_count_as_working_days_overdue() -> None:
    # Working days after 7 May up to Tuesday 26 May, without the 25 May bank holiday: 12.
    assert working_days_overdue(ASSESSMENT, local("2026-05-26", "09:00"), CALENDAR) == 12


def test_a_met_obligation_is_0_working_days_overdue() -> None:
    late = replace(ASSESSMENT, met_at=local("2026-05-12"))

    assert working_days_overdue(late, local("2026-05-20"), CALENDAR) == 0


# At risk: reviews booked too late or not at all (cp-review due Tuesday 2 June 2026; a booking is
# expected by 10 working days before, Monday 18 May, skipping the 25 May bank holiday).

PLAN = event("child_protection_plan_started", "2026-03-02")


def cp_review(*events: Event) -> Obligation:
    return of_rule(derive([PLAN, *events]), "cp-review")[0]


def booking(when: str, scheduled_for: str, review: str = "cp-review") -> Event:
    return event("review_scheduled", when, review=review, scheduled_for=scheduled_for)


def test_an_unbooked_review_is_not_at_risk_before_the_booking_deadline() -> None:
    assert not is_at_risk(cp_review(), local("2026-05-17", "23:59"))


def test_an_unbooked_review_is_at_risk_from_10_working_days_before_its_due_day() -> None:
    assert is_at_risk(cp_review(), local("2026-05-18"))
    assert is_at_risk(cp_review(), end_of("2026-06-02"))


def test_a_review_booked_in_time_is_not_at_risk() -> None:
    review = cp_review(booking("2026-04-01", "2026-05-28"))

    assert not is_at_risk(review, local("2026-05-18"))
    assert not is_at_risk(review, end_of("2026-06-02"))


def test_a_review_booked_for_the_due_day_is_not_at_risk() -> None:
    review = cp_review(booking("2026-04-01", "2026-06-02"))

    assert not is_at_risk(review, local("2026-06-01"))


def test_a_review_booked_for_after_its_due_day_is_at_risk_from_the_booking() -> None:
    review = cp_review(booking("2026-04-01", "2026-06-03"))

    assert not is_at_risk(review, local("2026-03-31"))
    assert is_at_risk(review, local("2026-04-01"))


def test_a_review_booked_at_a_time_after_the_due_day_in_local_time_is_at_risk() -> None:
    # 23:30 UTC on 2 June is 00:30 BST on 3 June, the day after the due day.
    review = cp_review(booking("2026-04-01", "2026-06-02T23:30:00Z"))

    assert is_at_risk(review, local("2026-04-02"))


def test_a_late_booking_made_in_time_ends_the_unbooked_risk() -> None:
    review = cp_review(booking("2026-05-20", "2026-05-29"))

    assert is_at_risk(review, local("2026-05-19"))
    assert not is_at_risk(review, local("2026-05-20"))


def test_rebooking_a_late_review_in_time_ends_the_risk() -> None:
    review = cp_review(booking("2026-04-01", "2026-06-10"), booking("2026-04-15", "2026-05-29"))

    assert is_at_risk(review, local("2026-04-10"))
    assert not is_at_risk(review, local("2026-04-15"))
    assert not is_at_risk(review, local("2026-05-20"))


def test_a_booking_for_another_review_does_not_count() -> None:
    review = cp_review(booking("2026-04-01", "2026-05-28", review="cla-review"))

    assert is_at_risk(review, local("2026-05-18"))


def test_an_overdue_review_is_overdue_rather_than_at_risk() -> None:
    assert not is_at_risk(cp_review(), end_of("2026-06-02") + MICROSECOND)


def test_a_held_review_is_not_at_risk() -> None:
    review = cp_review(event("cp_review_held", "2026-05-20"))

    assert not is_at_risk(review, local("2026-05-21"))


def test_the_booking_of_the_review_that_met_the_last_one_does_not_count_for_the_next() -> None:
    obligations = derive(
        [
            PLAN,
            booking("2026-04-01", "2026-05-28"),
            event("cp_review_held", "2026-05-28"),
        ]
    )

    # The next review is due 28 November 2026; 10 working days before is 16 November.
    second = of_rule(obligations, "cp-review")[1]

    assert second.due_at == end_of("2026-11-28")
    assert not is_at_risk(second, local("2026-11-15"))
    assert is_at_risk(second, local("2026-11-16"))


def test_a_booking_made_before_the_next_review_opened_counts_for_it() -> None:
    obligations = derive(
        [
            PLAN,
            booking("2026-04-01", "2026-05-28"),
            booking("2026-05-01", "2026-11-20"),
            event("cp_review_held", "2026-05-28"),
        ]
    )

    second = of_rule(obligations, "cp-review")[1]

    assert not is_at_risk(second, local("2026-11-16"))


def test_a_cla_review_is_at_risk_when_unbooked_10_working_days_before_it_is_due() -> None:
    # Due Monday 30 March 2026; 10 working days before is Monday 16 March.
    review = of_rule(derive([event("became_looked_after", "2026-03-02")]), "cla-review")[0]

    assert not is_at_risk(review, local("2026-03-15", "23:59"))
    assert is_at_risk(review, local("2026-03-16"))


def test_a_cla_review_booked_in_time_is_not_at_risk() -> None:
    obligations = derive(
        [
            event("became_looked_after", "2026-03-02"),
            booking("2026-03-05", "2026-03-27", review="cla-review"),
        ]
    )

    assert not is_at_risk(of_rule(obligations, "cla-review")[0], local("2026-03-20"))


@pytest.mark.parametrize("rule_id", ["core-group", "cp-visit"])
def test_rules_without_scheduled_by_are_never_at_risk(rule_id: str) -> None:
    obligation = of_rule(derive([PLAN]), rule_id)[0]

    assert not is_at_risk(obligation, obligation.due_at)


# Missed, then cancelled. A child looked after from Monday 2 March 2026 is due a first review
# within 20 working days: by the end of Monday 30 March 2026.

LATER = datetime(2030, 1, 1, tzinfo=UTC)


def first_review(*after: Event) -> Obligation:
    log = [event("became_looked_after", "2026-03-02"), *after]
    return of_rule(derive(log), "cla-review")[0]


def test_a_review_that_never_happened_and_was_then_cancelled_was_missed() -> None:
    review = first_review(event("ceased_looked_after", "2026-04-02"))

    assert review.due_at == end_of("2026-03-30")
    assert (status_at(review, LATER), is_missed(review, LATER)) == ("cancelled", True)


def test_before_it_is_cancelled_a_missed_review_is_overdue_not_yet_missed() -> None:
    review = first_review(event("ceased_looked_after", "2026-04-02"))
    before = local("2026-04-01", "12:00")

    assert (status_at(review, before), is_missed(review, before)) == ("overdue", False)


def test_a_missed_review_shows_missed_from_the_instant_it_is_cancelled() -> None:
    review = first_review(event("ceased_looked_after", "2026-04-02"))
    cancelled_at = local("2026-04-02")

    assert not is_missed(review, cancelled_at - MICROSECOND)
    assert is_missed(review, cancelled_at)


def test_a_review_cancelled_on_its_due_day_is_neutral() -> None:
    review = first_review(event("ceased_looked_after", local("2026-03-30", "16:00")))

    assert (status_at(review, LATER), is_missed(review, LATER)) == ("cancelled", False)


def test_a_cancellation_at_the_last_microsecond_of_the_due_day_is_neutral() -> None:
    review = first_review()
    due_at = review.due_at

    assert not missed_then_cancelled(due_at, due_at)
    assert missed_then_cancelled(due_at, due_at + MICROSECOND)
    assert not is_missed(replace(review, cancelled_at=due_at, cancelled_by_event="e"), LATER)


def test_a_cancellation_the_day_after_the_due_day_misses_it() -> None:
    review = first_review(event("ceased_looked_after", "2026-03-31"))

    assert is_missed(review, LATER)


def test_met_late_and_open_obligations_are_never_missed() -> None:
    late = first_review(event("cla_review_held", "2026-04-02"))

    assert status_at(late, LATER) == "met_late"
    assert not is_missed(late, LATER)
    assert not is_missed(first_review(), LATER)
