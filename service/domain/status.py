"""An obligation's status at an instant: a few comparisons of stored instants."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from service.domain.calendar import Calendar
from service.domain.derive import Obligation

Status = Literal["cancelled", "met", "met_late", "overdue", "due_soon", "upcoming"]
STATUSES: tuple[Status, ...] = ("upcoming", "due_soon", "overdue", "met", "met_late", "cancelled")
OPEN_STATUSES: frozenset[Status] = frozenset({"upcoming", "due_soon", "overdue"})


def status_at(obligation: Obligation, at: datetime) -> Status:
    """The status at `at`, checked in the order docs/rules.md gives: cancelled, met, met_late,
    overdue, due_soon."""
    if obligation.cancelled_at is not None and obligation.cancelled_at <= at:
        return "cancelled"
    if obligation.met_at is not None and obligation.met_at <= at:
        return "met" if obligation.met_at <= obligation.due_at else "met_late"
    if at > obligation.due_at:
        return "overdue"
    if obligation.warn_at is not None and at >= obligation.warn_at:
        return "due_soon"
    return "upcoming"


def missed_then_cancelled(due_at: datetime, cancelled_at: datetime | None) -> bool:
    """A deadline cancelled after it fell due was missed first, and timeliness counts it late
    (a looked-after review that never happened, then the child ceased to be looked after); one
    cancelled by the end of its due day is neutral."""
    return cancelled_at is not None and cancelled_at > due_at


def is_missed(obligation: Obligation, at: datetime) -> bool:
    """Whether at `at` the obligation is cancelled and was missed before it was: the API shows
    `missed: true` beside `status: cancelled`."""
    cancelled_at = obligation.cancelled_at
    return (
        cancelled_at is not None
        and cancelled_at <= at
        and missed_then_cancelled(obligation.due_at, cancelled_at)
    )


def escalation_level(obligation: Obligation, at: datetime) -> int:
    """How many escalation thresholds an overdue obligation has passed (0 when not overdue)."""
    if status_at(obligation, at) != "overdue":
        return 0
    return sum(1 for threshold in obligation.escalate_at if at > threshold)


def working_days_overdue(obligation: Obligation, at: datetime, calendar: Calendar) -> int:
    """Working days in (due day, local date of `at`] for an overdue obligation, else 0."""
    if status_at(obligation, at) != "overdue":
        return 0
    due_day = calendar.local_date(obligation.due_at)
    return calendar.working_days_between(due_day, calendar.local_date(at))


def working_days_late(obligation: Obligation, at: datetime, calendar: Calendar) -> int:
    """Working days in (due day, day met] for an obligation met late by `at`, else 0: how
    late it was met, counted as the deadline was."""
    if status_at(obligation, at) != "met_late" or obligation.met_at is None:
        return 0
    due_day = calendar.local_date(obligation.due_at)
    return calendar.working_days_between(due_day, calendar.local_date(obligation.met_at))


def is_at_risk(obligation: Obligation, at: datetime) -> bool:
    """At risk only while still open and not yet overdue: after that, overdue says it all."""
    if status_at(obligation, at) not in ("upcoming", "due_soon"):
        return False
    return any(
        start <= at and (end is None or at < end) for start, end in obligation.at_risk_periods
    )


def is_paused(obligation: Obligation, at: datetime) -> bool:
    """Whether the deadline's clock stood still at `at` (a pause it was given): no alert then."""
    return any(p.started_at <= at < p.ends_at for p in obligation.pauses)
