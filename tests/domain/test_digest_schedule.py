"""Digest schedules: local time, working days only, the latest period whose time has come
(docs/webhooks.md, Digests). Bank holidays are those of the published England and Wales list:
Mon 31 Aug 2026 is the Summer bank holiday; Fri 25 and Mon 28 Dec 2026 are Christmas Day and
the Boxing Day substitute day."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from service.domain.calendar import Calendar
from service.domain.digests import DigestPeriod, DigestSchedule, due_period

LONDON = Calendar(region="england-and-wales", timezone="Europe/London")
DAILY = DigestSchedule.parse("daily 08:00")
WEEKLY = DigestSchedule.parse("weekly mon 08:00")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_daily_digest_is_due_at_its_local_time_in_summer_time() -> None:
    assert due_period(DAILY, LONDON, utc("2026-09-02T07:00:00Z")) == DigestPeriod(
        "2026-09-02", utc("2026-09-02T07:00:00Z")
    )


def test_before_its_time_the_previous_working_day_is_the_latest_period() -> None:
    period = due_period(DAILY, LONDON, utc("2026-11-23T07:59:00Z"))  # Monday, GMT
    assert period == DigestPeriod("2026-11-20", utc("2026-11-20T08:00:00Z"))


def test_no_daily_digest_falls_on_a_weekend_or_a_bank_holiday() -> None:
    period = due_period(DAILY, LONDON, utc("2026-12-28T12:00:00Z"))  # Boxing Day substitute
    assert period is not None
    assert period.key == "2026-12-24"


def test_a_weekly_digest_whose_day_is_a_bank_holiday_goes_the_next_working_day() -> None:
    on_the_holiday = due_period(WEEKLY, LONDON, utc("2026-08-31T10:00:00+01:00"))
    assert on_the_holiday is not None
    assert on_the_holiday.key == "2026-08-24"
    next_day = due_period(WEEKLY, LONDON, utc("2026-09-01T08:00:00+01:00"))
    assert next_day == DigestPeriod("2026-08-31", utc("2026-09-01T07:00:00Z"))


def test_a_weekly_digest_is_due_from_its_day_until_the_next_week_s() -> None:
    period = due_period(WEEKLY, LONDON, utc("2026-11-27T17:00:00Z"))  # the Friday after
    assert period == DigestPeriod("2026-11-23", utc("2026-11-23T08:00:00Z"))


def test_a_schedule_is_written_back_as_given() -> None:
    assert (str(DAILY), str(WEEKLY)) == ("daily 08:00", "weekly mon 08:00")
    assert DigestSchedule.parse(" Weekly FRI 16:30 ") == DigestSchedule("weekly", time(16, 30), 4)


@pytest.mark.parametrize(
    "text",
    [
        "daily",
        "daily 8:00",
        "daily 24:00",
        "daily 07:60",
        "weekly 08:00",
        "weekly mo 08:00",
        "daily mon 08:00",
        "hourly 08:00",
        "",
    ],
)
def test_anything_else_is_not_a_schedule(text: str) -> None:
    with pytest.raises(ValueError, match=r"schedule|time of day|weekday"):
        DigestSchedule.parse(text)
