"""caseclock's alerts as Prometheus Alertmanager alerts: labels, annotations, and when each
one stops firing.

An Alertmanager alert is identified by its labels and fires until its `endsAt`; one sent
without `endsAt` resolves by itself `resolve_timeout` after it was last received, so a firing
alert is posted again and again while it holds (docs/alertmanager.md). Each alert of an
obligation fires while it describes the obligation's current state, as `owed_alerts` gives
it: `overdue` until the deadline is met, cancelled, voided or escalated (the escalation takes
over), escalation level n until level n + 1, `due_soon` until the deadline is met or falls
due, `at_risk` while it is at risk.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from service.domain.alerts import AlertType, OwedAlert, owed_alerts, rfc3339, withdrawal_reason
from service.domain.derive import Obligation

ALERT_NAMES: dict[str, str] = {
    "obligation.due_soon": "CaseclockDeadlineDueSoon",
    "obligation.overdue": "CaseclockDeadlineOverdue",
    "obligation.escalated": "CaseclockDeadlineEscalated",
    "obligation.at_risk": "CaseclockDeadlineAtRisk",
    "webhook.test": "CaseclockTest",
}
# What an Alertmanager subscription receives: states someone may act on, and test pings.
# `met_late` reports a closing, which resolves the alerts it closes instead.
PUSHED_TYPES = frozenset(ALERT_NAMES)
STATE_WORDS = {
    "obligation.due_soon": "due soon",
    "obligation.overdue": "overdue",
    "obligation.escalated": "escalated",
    "obligation.at_risk": "at risk",
}
API_PATH = "/api/v2/alerts"
# A test ping fires for this long, then resolves by itself: long enough to be routed.
TEST_FIRING = timedelta(minutes=5)


def severity(alert_type: str, level: int) -> str:
    """`info` before the due day, `warning` once late or at risk, `critical` once escalated."""
    if alert_type == "obligation.escalated" and level > 0:
        return "critical"
    if alert_type in ("obligation.overdue", "obligation.at_risk"):
        return "warning"
    return "info"


def _describes_now(alert: OwedAlert, obligation: Obligation, now: datetime) -> bool:
    """Whether the alert is the obligation's current state (an escalation takes over from
    `overdue` and from the level before it)."""
    owed = owed_alerts(obligation, now)
    if alert.type == "obligation.overdue":
        return alert in owed and not any(a.type == "obligation.escalated" for a in owed)
    return alert in owed


def ended_at(
    alert: OwedAlert, obligation: Obligation | None, *, raised_at: datetime, now: datetime
) -> datetime | None:
    """When the alert stopped describing the obligation (its `endsAt`), or None while it still
    does. An obligation that no longer exists (its opening event voided), or an alert the log
    no longer supports, ends `now`; a test ping ends TEST_FIRING after it was raised."""
    if alert.type == "webhook.test":
        return raised_at + TEST_FIRING
    if obligation is None or withdrawal_reason(alert, obligation, raised_at=raised_at, now=now):
        return now
    if _describes_now(alert, obligation, now):
        return None
    changes = [
        obligation.due_at,
        *obligation.escalate_at,
        *(end for _, end in obligation.at_risk_periods if end is not None),
    ]
    if obligation.closed_at is not None:
        changes.append(obligation.closed_at)
    passed = [t for t in changes if raised_at < t <= now]
    return min(passed) if passed else now


def dashboard_links(public_url: str, case_id: str | None, team_id: str | None) -> dict[str, str]:
    """The dashboard (for the team, if any) and the case's page, under `public_url` (paths
    alone where it is not configured)."""
    base = public_url.rstrip("/")
    dashboard = f"{base}/dashboard" + (f"?{urlencode({'team_id': team_id})}" if team_id else "")
    links = {"dashboard": dashboard}
    if case_id is not None:
        links["case"] = f"{base}/dashboard/cases/{quote(case_id, safe='')}"
    return links


def alertmanager_alert(
    alert_type: AlertType,
    level: int,
    payload: dict[str, Any],
    *,
    org: str,
    ends_at: datetime | None,
    public_url: str,
) -> dict[str, Any]:
    """One postable alert of Alertmanager's API v2 from a caseclock alert's webhook body."""
    data = payload["data"]
    labels = {"alertname": ALERT_NAMES[alert_type], "severity": severity(alert_type, level)}
    labels["org"] = org
    if alert_type == "webhook.test":
        annotations = {"summary": data["message"]}
        links = dashboard_links(public_url, None, None)
    else:
        ob = data["obligation"]
        case = data["case"]
        optional = {
            "team_id": case["team_id"],
            "worker_id": case["worker_id"],
            "rule_id": ob["rule_id"],
            "case_id": ob["case_id"],
            "obligation_id": ob["id"],
            "escalation_level": str(level) if alert_type == "obligation.escalated" else None,
        }
        labels.update({name: value for name, value in optional.items() if value})
        links = dashboard_links(public_url, ob["case_id"], case["team_id"])
        annotations = {
            "summary": f"{ob['rule_name']}: {STATE_WORDS[alert_type]} (case {ob['case_id']})",
            "description": data.get("explanation", {}).get("text", ""),
        }
    annotations.update(links)
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": {name: text for name, text in annotations.items() if text},
        "startsAt": payload["timestamp"],
    }
    if ends_at is not None:
        body["endsAt"] = rfc3339(ends_at)
    if public_url:
        body["generatorURL"] = links.get("case", links["dashboard"])
    return body
