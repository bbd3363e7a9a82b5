"""The arithmetic of the statutory measures: medians from histograms, and assessments counted
from their start. Working days counted by hand from the England and Wales bank holidays."""

from __future__ import annotations

from collections import Counter
from datetime import date

from service.domain.calendar import Calendar
from service.domain.statutory import Tally, judge_from_start, median

CALENDAR = Calendar()


def test_the_median_of_an_odd_count_is_the_middle_value() -> None:
    assert median(Counter({3: 1, 10: 1, 45: 1})) == 10


def test_the_median_of_an_even_count_is_the_mean_of_the_two_middle_values() -> None:
    assert median(Counter({36: 1, 43: 1})) == 39.5


def test_the_median_counts_each_value_as_often_as_it_occurred() -> None:
    assert median(Counter({1: 3, 50: 2})) == 1


def test_nothing_counted_has_no_median() -> None:
    assert median(Counter()) is None


def test_an_assessment_authorised_the_day_it_started_took_no_working_days() -> None:
    tally = Tally()
    judge_from_start(tally, CALENDAR, date(2025, 12, 1), date(2025, 12, 3), date(2025, 12, 3))
    assert (tally.numerator, tally.denominator, tally.working_days) == (1, 1, Counter({0: 1}))


def test_an_assessment_46_working_days_from_its_start_is_late() -> None:
    # Monday 1 December 2025 to Friday 6 February 2026, past Christmas Day, Boxing Day and
    # New Year's Day: 46 working days.
    tally = Tally()
    judge_from_start(tally, CALENDAR, date(2025, 12, 1), date(2025, 12, 1), date(2026, 2, 6))
    assert (tally.numerator, tally.denominator, tally.working_days) == (0, 1, Counter({46: 1}))


def test_a_start_before_the_referral_belongs_to_another_and_is_left_out() -> None:
    tally = Tally()
    judge_from_start(tally, CALENDAR, date(2025, 12, 1), date(2025, 11, 28), date(2025, 12, 5))
    assert (tally.denominator, tally.excluded) == (0, 1)
