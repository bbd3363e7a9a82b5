"""Which alerts an obligation owes at an instant, when that can next change, and what they say.

An obligation owes only the alerts of its *current* state, so one first seen late (a
backdated event, a rules change, a sweep that ran late) announces where it is now and never
a stale `due_soon` or a skipped escalation level. The store records each owed alert once,
ever, under a unique key; this module only answers the questions, without I/O or a clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from service.domain.calendar import Calendar
from service.domain.derive import Obligation
from service.domain.explain import explain
from service.domain.rules import Rule
from service.domain.status import (
    escalation_level,
    is_at_risk,
    is_missed,
    is_paused,
    status_at,
    working_days_late,
    working_days_overdue,
)

AlertType = Literal[
    "obligation.due_soon",
    "obligation.overdue",
    "obligation.escalated",
    "obligation.at_risk",
    "obligation.met_late",
    "webhook.test",
    "backfill.completed",
    "import.completed",
    "digest.daily",
    "digest.weekly",
]
OBLIGATION_ALERT_TYPES: tuple[AlertType, ...] = (
    "obligation.due_soon",
    "obligation.overdue",
    "obligation.escalated",
    "obligation.at_risk",
    "obligation.met_late",
)
TEST_ALERT: AlertType = "webhook.test"
CompletedType = Literal["backfill.completed", "import.completed"]

# Status changes happen *after* a threshold (overdue is T > due_at): the first instant of the
# new state is one tick later, at the precision both databases store.
_TICK = timedelta(microseconds=1)


class OwedAlert(NamedTuple):
    """One alert an obligation owes: its type and, for escalations, the level (else 0)."""

    type: AlertType
    level: int = 0


def owed_alerts(obligation: Obligation, at: datetime) -> list[OwedAlert]:
    """The alerts of the obligation's state at `at`, and only of that state."""
    owed: list[OwedAlert] = []
    status = status_at(obligation, at)
    if status == "overdue":
        owed.append(OwedAlert("obligation.overdue"))
        level = escalation_level(obligation, at)
        if level:
            owed.append(OwedAlert("obligation.escalated", level))
    elif status == "due_soon":
        owed.append(OwedAlert("obligation.due_soon"))
    elif status == "met_late":
        owed.append(OwedAlert("obligation.met_late"))
    if is_at_risk(obligation, at):
        owed.append(OwedAlert("obligation.at_risk"))
    return owed


def withdrawal_reason(
    alert: OwedAlert, obligation: Obligation | None, *, raised_at: datetime, now: datetime
) -> str | None:
    """Why the log no longer supports an alert raised at `raised_at`, judged at `now` against
    the obligation as derived now; None while it still does.

    An alert says a state was reached. It stays true if the obligation, per its current
    instants, reached that state by `now`: overdue if not closed by the end of its due day,
    due soon if not closed when its warning window opened, escalated to n if not closed at
    threshold n, met late if met after its due day, at risk if it was at risk when raised and
    is not closed on time. A later event that moves or closes the deadline in time (a second
    batch of the same history, a void) makes it untrue: the alert is withdrawn, never sent.
    """
    if obligation is None:
        return "obligation no longer exists"
    closed_at = obligation.closed_at
    due_at = obligation.due_at

    def closed_by(instant: datetime) -> bool:
        return closed_at is not None and closed_at <= instant

    def closed_before(what: str) -> str:
        return f"{'met' if obligation.met_at is not None else 'cancelled'} {what}"

    if alert.type in ("obligation.overdue", "obligation.at_risk") and closed_by(due_at):
        return "met on time" if obligation.met_at is not None else "cancelled before it fell due"
    if alert.type == "obligation.overdue":
        return None if now > due_at else "not overdue: its due date has moved"
    if alert.type == "obligation.due_soon":
        warn_at = obligation.warn_at
        if warn_at is None or warn_at > now:
            return "not due soon: its warning window has moved"
        return closed_before("before its warning window") if closed_by(warn_at) else None
    if alert.type == "obligation.escalated":
        if len(obligation.escalate_at) < alert.level:
            return "not escalated: the rule has no such level"
        threshold = obligation.escalate_at[alert.level - 1]
        if closed_by(threshold):
            return closed_before(f"before escalation level {alert.level}")
        return None if now > threshold else "not escalated: its thresholds have moved"
    if alert.type == "obligation.met_late":
        met_at = obligation.met_at
        return None if met_at is not None and met_at > due_at else "not met late"
    if alert.type == "obligation.at_risk":
        return None if is_at_risk(obligation, raised_at) else "not at risk"
    return None


def next_check_at(obligation: Obligation, after: datetime) -> datetime | None:
    """The first instant after `after` at which `owed_alerts` can give a different answer.

    None once the obligation is closed (met or cancelled by `after`): nothing it could owe
    later is still to come. The sweep visits an obligation only at these instants, which is
    what makes an idle tick cost nothing however many obligations are open.
    """
    closed_at = obligation.closed_at
    if closed_at is not None and closed_at <= after:
        return None
    changes = [obligation.due_at + _TICK, *(t + _TICK for t in obligation.escalate_at)]
    if obligation.warn_at is not None:
        changes.append(obligation.warn_at)
    changes.extend(start for start, _ in obligation.at_risk_periods)
    if closed_at is not None:
        # Nothing changes after closing but the closing itself, which owes met_late if late.
        changes = [t for t in changes if t < closed_at]
        if obligation.met_at is not None and obligation.met_at > obligation.due_at:
            changes.append(obligation.met_at)
    future = [t for t in changes if t > after]
    return min(future) if future else None


def rfc3339(instant: datetime) -> str:
    """UTC with `Z`, as every API response writes instants."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _optional(instant: datetime | None) -> str | None:
    return rfc3339(instant) if instant is not None else None


def obligation_snapshot(
    obligation: Obligation,
    *,
    rule_name: str,
    worker_id: str | None,
    team_id: str | None,
    calendar: Calendar,
    at: datetime,
) -> dict[str, Any]:
    """The obligation as `GET /v1/obligations` shows it at `at` (README, API in brief)."""
    met = obligation.met_at is not None and obligation.met_at <= at
    cancelled = obligation.cancelled_at is not None and obligation.cancelled_at <= at
    return {
        "id": obligation.id,
        "case_id": obligation.case_id,
        "rule_id": obligation.rule_id,
        "rule_name": rule_name,
        "status": status_at(obligation, at),
        "missed": is_missed(obligation, at),
        "opened_at": rfc3339(obligation.opened_at),
        "due_at": rfc3339(obligation.due_at),
        "met_at": _optional(obligation.met_at) if met else None,
        "met_at_latest": met and obligation.met_at_latest,
        "cancelled_at": _optional(obligation.cancelled_at) if cancelled else None,
        "worker_id": worker_id,
        "team_id": team_id,
        "sequence": obligation.sequence,
        "working_days_overdue": working_days_overdue(obligation, at, calendar),
        "escalation_level": escalation_level(obligation, at),
        "at_risk": is_at_risk(obligation, at),
        "opened_by_event": obligation.opened_by_event,
        "met_by_event": obligation.met_by_event if met else None,
        **clock_snapshot(obligation, at),
    }


def clock_snapshot(obligation: Obligation, at: datetime) -> dict[str, Any]:
    """What was said of the deadline's clock (docs/rules.md, Why a deadline is late), flat so
    a CSV row holds it too: the reason recorded, the rule's date beside an agreed one, who
    agreed it, and whether the clock stood still at `at`."""
    reason = obligation.delay_reason
    extension = obligation.extension
    return {
        "original_due_at": _optional(obligation.original_due_at),
        "delay_reason": reason.code if reason else None,
        "delay_reason_label": reason.label if reason else None,
        "delay_note": reason.note if reason else None,
        "delay_reason_event": reason.event_id if reason else None,
        "extension_authorised_by": extension.authorised_by if extension else None,
        "extension_event": extension.event_id if extension else None,
        "paused": is_paused(obligation, at),
    }


def alert_payload(
    alert: OwedAlert,
    obligation: Obligation,
    *,
    rule: Rule | None,
    rule_name: str,
    worker_id: str | None,
    team_id: str | None,
    calendar: Calendar,
    at: datetime,
) -> dict[str, Any]:
    """The webhook body of an obligation alert raised at `at` (docs/webhooks.md), with the
    sentence that explains its deadline, so whoever is paged can check the date by hand."""
    snapshot = obligation_snapshot(
        obligation,
        rule_name=rule_name,
        worker_id=worker_id,
        team_id=team_id,
        calendar=calendar,
        at=at,
    )
    if alert.type == "obligation.met_late":
        snapshot["working_days_late"] = working_days_late(obligation, at, calendar)
    return {
        "type": alert.type,
        "timestamp": rfc3339(at),
        "data": {
            "obligation": snapshot,
            "case": {"case_id": obligation.case_id, "worker_id": worker_id, "team_id": team_id},
            "rule": {
                "id": obligation.rule_id,
                "name": rule_name,
                "source": rule.source if rule is not None else "",
            },
            "explanation": {"text": explain(obligation, rule, calendar).sentence},
        },
    }


class CompletedCount(NamedTuple):
    """What one team's obligations under one rule are now, after a backfill or import."""

    team_id: str | None
    rule_id: str
    overdue: int
    due_soon: int
    escalated: int


def completed_payload(
    alert_type: CompletedType, counts: list[CompletedCount], at: datetime
) -> dict[str, Any]:
    """The body of the one summary alert a backfill or import raises in place of the
    per-obligation alerts of states reached before it was posted."""
    return {
        "type": alert_type,
        "timestamp": rfc3339(at),
        "data": {
            "overdue": sum(c.overdue for c in counts),
            "due_soon": sum(c.due_soon for c in counts),
            "escalated": sum(c.escalated for c in counts),
            "by_team_and_rule": [c._asdict() for c in counts],
        },
    }


def ping_payload(subscription_id: str, at: datetime) -> dict[str, Any]:
    """The body of a `webhook.test` ping: enough to check the receiver and its signature check."""
    return {
        "type": TEST_ALERT,
        "timestamp": rfc3339(at),
        "data": {
            "subscription_id": subscription_id,
            "message": "A test alert from caseclock: your endpoint is receiving and verifying.",
        },
    }
