"""Digest schedules: when a daily or weekly digest is due, in the organisation's local time and
on its working days.

A schedule names a time of day ("daily 08:00") or a weekday and a time ("weekly mon 08:00").
Each period has one send time: a working day at that local time; a weekly digest whose day is
not a working day (a bank holiday Monday) goes on the next working day of its week. The
store keeps one digest per period, so the latest period whose send time has come is all a
run needs: one that was missed while the service was down goes once, late.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from service.domain.calendar import Calendar, Duration

DigestType = Literal["digest.daily", "digest.weekly"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SCHEDULE = re.compile(
    r"(?P<every>daily|weekly)\s+(?:(?P<day>[a-z]{3})\s+)?(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
)
# A daily digest looks back this far for a working day (long closures included).
_LOOKBACK_DAYS = 31


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    every: Literal["daily", "weekly"]
    at: time
    weekday: int | None = None  # 0 is Monday; weekly schedules only

    @classmethod
    def parse(cls, text: str) -> DigestSchedule:
        """A schedule from "daily HH:MM" or "weekly mon HH:MM"; ValueError says what is wrong."""
        found = _SCHEDULE.fullmatch(text.strip().lower())
        if found is None:
            raise ValueError(
                f'{text!r} is not a schedule: expected "daily HH:MM" or "weekly mon HH:MM"'
            )
        hour, minute = int(found["hour"]), int(found["minute"])
        if hour > 23 or minute > 59:
            raise ValueError(f"{found['hour']}:{found['minute']} is not a time of day")
        day = found["day"]
        if found["every"] == "daily":
            if day is not None:
                raise ValueError('a daily schedule names no weekday: "daily HH:MM"')
            return cls("daily", time(hour, minute))
        if day not in WEEKDAYS:
            raise ValueError(
                f'a weekly schedule names a weekday ({", ".join(WEEKDAYS)}): "weekly mon HH:MM"'
            )
        return cls("weekly", time(hour, minute), WEEKDAYS.index(day))

    def __str__(self) -> str:
        clock = f"{self.at:%H:%M}"
        if self.weekday is None:
            return f"daily {clock}"
        return f"weekly {WEEKDAYS[self.weekday]} {clock}"

    @property
    def alert_type(self) -> DigestType:
        return "digest.daily" if self.every == "daily" else "digest.weekly"


@dataclass(frozen=True, slots=True)
class DigestPeriod:
    """One period of a schedule: its key (the day, or the week's named day) and send time."""

    key: str
    sends_at: datetime


def _send_time(calendar: Calendar, day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=calendar.timezone).astimezone(UTC)


def _weekly_send_day(calendar: Calendar, anchor: date) -> date | None:
    """The first working day from the named day to the end of its week."""
    for offset in range(7):
        day = anchor + timedelta(days=offset)
        if calendar.is_working_day(day):
            return day
    return None


def due_period(schedule: DigestSchedule, calendar: Calendar, now: datetime) -> DigestPeriod | None:
    """The latest period whose send time is at or before `now`."""
    today = calendar.local_date(now)
    if schedule.weekday is None:
        for back in range(_LOOKBACK_DAYS):
            day = today - timedelta(days=back)
            if calendar.is_working_day(day):
                sends_at = _send_time(calendar, day, schedule.at)
                if sends_at <= now:
                    return DigestPeriod(day.isoformat(), sends_at)
        return None
    anchor = today - timedelta(days=(today.weekday() - schedule.weekday) % 7)
    for _ in range(2):  # this week's, else last week's
        send_day = _weekly_send_day(calendar, anchor)
        if send_day is not None:
            sends_at = _send_time(calendar, send_day, schedule.at)
            if sends_at <= now:
                return DigestPeriod(anchor.isoformat(), sends_at)
        anchor -= timedelta(days=7)
    return None


def previous_working_day(calendar: Calendar, at: datetime) -> datetime:
    """The same local time on the working day before `at`'s: what a daily digest covers."""
    local = at.astimezone(calendar.timezone)
    day = calendar.subtract(local.date(), Duration(1, "working_days"))
    return datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=calendar.timezone)
