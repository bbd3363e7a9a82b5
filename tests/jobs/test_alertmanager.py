"""Alertmanager subscriptions: caseclock's alerts posted to a real Prometheus Alertmanager,
routed by team to a receiver, grouped by team, re-posted while they fire and resolved when
the deadline is met (docs/alertmanager.md).

The Alertmanager is Debian's `prometheus-alertmanager`, started here on a free port with a
configuration written here; the tests skip only where the binary is not installed. Times are
the real clock's, since Alertmanager judges `endsAt` by its own.

A referral dated 20 days ago owes, for each of referral-decision and first-contact, overdue
and escalation level 2 (both escalate 1 and 3 working days after the due day): overdue is
taken over by the escalation, so each case fires two `CaseclockDeadlineEscalated` alerts.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FixedClock, Tenant, make_tenant
from fastapi import FastAPI
from webhook_harness import (
    Alerting,
    Receiver,
    WebhookSender,
    eventually,
    post,
    receiver,
    referral,
    running_app,
    settings_for,
    subscribe,
)

from service.store.db import transaction
from service.store.orgs import org_by_id

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
REPOST_SECONDS = 1

CONFIG = """
global:
  resolve_timeout: 5m
route:
  receiver: fallback
  group_by: [team_id]
  group_wait: 3s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['team_id="T-A"']
      receiver: team-a
    - matchers: ['team_id="T-B"']
      receiver: team-b
receivers:
  - name: fallback
    webhook_configs: [{{url: "{hooks}/fallback"}}]
  - name: team-a
    webhook_configs: [{{url: "{hooks}/team-a", send_resolved: true}}]
  - name: team-b
    webhook_configs: [{{url: "{hooks}/team-b", send_resolved: true}}]
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def routed() -> AsyncIterator[Receiver]:
    async with receiver() as running:
        yield running


@pytest.fixture
def alertmanager(routed: Receiver, tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager routing by team_id to `routed`; its address."""
    if BINARY is None:
        pytest.skip("prometheus-alertmanager is not installed (.ci/run installs it)")
    config = tmp_path / "alertmanager.yml"
    config.write_text(CONFIG.format(hooks=f"http://127.0.0.1:{routed.port}"))
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - a fixed binary and arguments
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{address}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            process.poll()
            assert process.returncode is None, "alertmanager exited"
            time.sleep(0.1)
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
async def pushing(app: FastAPI, database_url: str) -> AsyncIterator[Alerting]:
    """The app on the real clock, re-posting firing alerts every second."""
    clock = FixedClock(datetime.now(UTC))
    settings = settings_for(database_url, alertmanager_repost_seconds=REPOST_SECONDS)
    async with running_app(settings, clock) as application:
        sender = WebhookSender(timeout_seconds=2, allow_private=True, concurrency=8)
        view = Alerting(application, clock, sender)
        try:
            yield view
        finally:
            await sender.aclose()
            await view.settle()


async def referred(tenant: Tenant, clock: FixedClock, case_id: str, team_id: str) -> None:
    twenty_days_ago = (clock.now - timedelta(days=20)).isoformat()
    await post(tenant.writer, referral(case_id, twenty_days_ago, team_id=team_id))


async def met(tenant: Tenant, clock: FixedClock, case_id: str) -> None:
    for kind in ("referral_decision_made", "contact_made"):
        event = {
            "id": f"{case_id}-{kind}",
            "type": kind,
            "case_id": case_id,
            "occurred_at": clock.now.isoformat(),
            "data": {"outcome": "assessment"} if kind == "referral_decision_made" else {},
        }
        await post(tenant.writer, event)


def notified(routed: Receiver, path: str) -> list[dict[str, Any]]:
    return [r.payload for r in routed.at(path)]


def alerts_in(notifications: list[dict[str, Any]], status: str) -> set[tuple[str, str]]:
    return {
        (a["labels"]["case_id"], a["labels"]["rule_id"])
        for n in notifications
        for a in n["alerts"]
        if a["status"] == status
    }


async def test_alerts_fire_grouped_by_team_and_resolve_when_met(
    pushing: Alerting, alertmanager: str, routed: Receiver
) -> None:
    tenant = await make_tenant(pushing.app)
    await subscribe(tenant, alertmanager, kind="alertmanager")
    await referred(tenant, pushing.clock, "C-1", "T-A")
    await referred(tenant, pushing.clock, "C-2", "T-A")
    await referred(tenant, pushing.clock, "C-3", "T-B")
    await pushing.deliver()
    rules = ("first-contact", "referral-decision")
    team_a = {(case, rule) for case in ("C-1", "C-2") for rule in rules}

    async def both_teams_fired() -> bool:
        return alerts_in(notified(routed, "/team-a"), "firing") == team_a and alerts_in(
            notified(routed, "/team-b"), "firing"
        ) == {("C-3", r) for r in rules}

    await eventually(both_teams_fired)
    first = notified(routed, "/team-a")[0]
    assert first["groupLabels"] == {"team_id": "T-A"}
    assert len(first["alerts"]) == 4  # one notification for the team's four alerts (group_wait)
    assert notified(routed, "/fallback") == []

    await met(tenant, pushing.clock, "C-1")
    pushing.clock.now += timedelta(seconds=REPOST_SECONDS)
    await pushing.deliver()

    async def c1_resolved() -> bool:
        resolved = alerts_in(notified(routed, "/team-a"), "resolved")
        return resolved == {("C-1", rule) for rule in rules}

    await eventually(c1_resolved)
    latest = notified(routed, "/team-a")[-1]
    assert {(a["labels"]["case_id"], a["status"]) for a in latest["alerts"]} == {
        ("C-1", "resolved"),
        ("C-2", "firing"),
    }


async def test_an_alert_carries_the_labels_to_route_by_and_its_explanation(
    pushing: Alerting, alertmanager: str, routed: Receiver
) -> None:
    tenant = await make_tenant(pushing.app)
    await subscribe(tenant, alertmanager, kind="alertmanager", rule_ids=["referral-decision"])
    await referred(tenant, pushing.clock, "C-1", "T-B")
    await pushing.deliver()

    async def notified_b() -> bool:
        return bool(routed.at("/team-b"))

    await eventually(notified_b)
    (alert,) = notified(routed, "/team-b")[0]["alerts"]
    async with transaction(pushing.app.state.session_factory) as session:
        org = await org_by_id(session, tenant.org_id)
    assert org is not None
    assert alert["labels"] == {
        "alertname": "CaseclockDeadlineEscalated",
        "severity": "critical",
        "org": org.name,
        "team_id": "T-B",
        "worker_id": "W-1",
        "rule_id": "referral-decision",
        "case_id": "C-1",
        "obligation_id": alert["labels"]["obligation_id"],
        "escalation_level": "2",
    }
    raised = next(
        row
        for row in await pushing.alerts(tenant.org_id)
        if (row.type, row.rule_id) == ("obligation.escalated", "referral-decision")
    )
    assert alert["annotations"]["description"] == raised.payload["data"]["explanation"]["text"]
    assert alert["annotations"]["case"] == "/dashboard/cases/C-1"


async def test_a_firing_alert_is_posted_again_by_any_replica_until_it_resolves(
    pushing: Alerting, routed: Receiver, database_url: str
) -> None:
    tenant = await make_tenant(pushing.app)
    subscription = await subscribe(
        tenant, routed.url("/am"), kind="alertmanager", rule_ids=["referral-decision"]
    )
    await referred(tenant, pushing.clock, "C-1", "T-A")
    await pushing.deliver()
    settings = settings_for(database_url, alertmanager_repost_seconds=REPOST_SECONDS)
    async with running_app(settings, pushing.clock) as replica:
        sender = WebhookSender(timeout_seconds=2, allow_private=True, concurrency=8)
        other = Alerting(replica, pushing.clock, sender)
        pushing.clock.now += timedelta(seconds=REPOST_SECONDS)
        await other.deliver()
        await met(tenant, pushing.clock, "C-1")
        pushing.clock.now += timedelta(seconds=REPOST_SECONDS)
        await other.deliver()
        pushing.clock.now += timedelta(seconds=REPOST_SECONDS)
        await other.deliver()
        await sender.aclose()
    posts = [r.payload for r in routed.at("/am/api/v2/alerts")]
    assert [len(body) for body in posts] == [1, 1, 1]
    assert ["endsAt" in body[0] for body in posts] == [False, False, True]
    assert {body[0]["labels"]["alertname"] for body in posts} == {"CaseclockDeadlineEscalated"}
    log = (await tenant.admin.get(f"/v1/webhooks/{subscription['id']}/deliveries")).json()
    statuses = sorted((d["type"], d["status"]) for d in log["items"])
    assert statuses == [("obligation.escalated", "succeeded"), ("obligation.overdue", "withdrawn")]


async def test_a_test_ping_fires_for_five_minutes_then_resolves_by_itself(
    pushing: Alerting, routed: Receiver
) -> None:
    tenant = await make_tenant(pushing.app)
    subscription = await subscribe(tenant, routed.url("/am"), kind="alertmanager")
    response = await tenant.admin.post(f"/v1/webhooks/{subscription['id']}/test")
    assert response.status_code == 202, response.text
    await pushing.deliver()
    ((alert,),) = [r.payload for r in routed.at("/am/api/v2/alerts")]
    assert alert["labels"]["alertname"] == "CaseclockTest"
    starts = datetime.fromisoformat(alert["startsAt"])
    assert datetime.fromisoformat(alert["endsAt"]) - starts == timedelta(minutes=5)


async def test_an_alertmanager_address_is_given_without_the_api_path(pushing: Alerting) -> None:
    tenant = await make_tenant(pushing.app)
    response = await tenant.admin.post(
        "/v1/webhooks",
        json={"kind": "alertmanager", "url": "http://127.0.0.1:9093/api/v2/alerts"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["pointer"] for e in response.json()["errors"]] == ["/url"]
