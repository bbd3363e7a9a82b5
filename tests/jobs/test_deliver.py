"""The delivery job POSTs signed alerts to a real receiver on 127.0.0.1, retries on the
schedule, records every attempt and looks after the subscription's health (docs/webhooks.md).

A referral dated 2 November, posted on 20 November, owes four alerts as it is ingested:
overdue and escalation level 2 for each of referral-decision and first-contact.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import Tenant
from fastapi import FastAPI
from webhook_harness import (
    START,
    Alerting,
    Answer,
    AppAndClock,
    Receiver,
    WebhookSender,
    alerting_app,
    alerting_for,
    post,
    receiver,
    referral,
    subscribe,
)

from service.store.db import transaction
from service.store.outbox import Decided, claim_due, fan_out, record_attempts, release_claims

BACKDATED = "2026-11-02T09:00:00Z"


@pytest.fixture(scope="module")
async def module_app(app: FastAPI, database_url: str) -> AsyncIterator[AppAndClock]:
    async with alerting_app(database_url) as app_and_clock:
        yield app_and_clock


@pytest.fixture
async def alerting(module_app: AppAndClock) -> AsyncIterator[Alerting]:
    async with alerting_for(module_app) as view:
        yield view


@pytest.fixture
async def endpoint() -> AsyncIterator[Receiver]:
    async with receiver() as running:
        yield running


async def subscribed(
    alerting: Alerting, endpoint: Receiver, path: str = "/hooks", **filters: Any
) -> tuple[Tenant, dict[str, Any]]:
    tenant = await alerting.tenant()
    return tenant, await subscribe(tenant, endpoint.url(path), **filters)


async def webhook(tenant: Tenant, subscription_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await tenant.admin.get(f"/v1/webhooks/{subscription_id}")).json()
    return body


async def deliveries_log(tenant: Tenant, subscription_id: str) -> list[dict[str, Any]]:
    response = await tenant.admin.get(f"/v1/webhooks/{subscription_id}/deliveries")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def closed_port() -> int:
    """A port nothing listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Delivery


async def test_every_alert_reaches_the_receiver_once_and_verifies(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint)
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    received = endpoint.at("/hooks")
    assert len(received) == 4
    assert all(r.verifies_with(subscription["secret"]) for r in received)
    assert len({r.webhook_id for r in received}) == 4
    assert sorted(r.payload["type"] for r in received) == [
        "obligation.escalated",
        "obligation.escalated",
        "obligation.overdue",
        "obligation.overdue",
    ]


async def test_the_webhook_id_is_the_delivery_id_and_it_is_recorded_succeeded(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint)
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    log = await deliveries_log(tenant, subscription["id"])
    assert {d["id"] for d in log} == {r.webhook_id for r in endpoint.at("/hooks")}
    assert {d["status"] for d in log} == {"succeeded"}
    assert all(len(d["attempts"]) == 1 for d in log)


async def test_the_body_is_the_alert_payload_with_standard_webhooks_headers(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, _ = await subscribed(alerting, endpoint, event_types=["obligation.overdue"])
    await post(tenant.writer, referral("C-1", BACKDATED, team_id="T-7"))
    await alerting.deliver()
    first = endpoint.at("/hooks")[0]
    assert first.headers["Content-Type"] == "application/json"
    assert first.headers["webhook-id"].startswith("msg_")
    assert abs(int(first.headers["webhook-timestamp"]) - datetime.now().timestamp()) < 60  # noqa: DTZ005
    assert first.headers["webhook-signature"].startswith("v1,")
    assert first.payload["data"]["case"] == {"case_id": "C-1", "worker_id": "W-1", "team_id": "T-7"}
    assert first.payload["data"]["obligation"]["status"] == "overdue"


async def test_an_attempt_is_logged_with_its_time_status_code_and_latency(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint, event_types=["obligation.overdue"])
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    (attempt,) = (await deliveries_log(tenant, subscription["id"]))[0]["attempts"]
    assert attempt["attempted_at"] == "2026-11-20T12:00:00Z"
    assert attempt["status_code"] == 200
    assert attempt["latency_ms"] >= 0
    assert attempt["error"] is None
    assert attempt["outcome"] == "succeeded"


# Filters


async def test_a_subscription_for_one_team_gets_nothing_about_another(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    await subscribe(tenant, endpoint.url("/team-a"), team_ids=["T-A"])
    await subscribe(tenant, endpoint.url("/team-b"), team_ids=["T-B"])
    await post(tenant.writer, referral("C-1", BACKDATED, team_id="T-A"))
    await alerting.deliver()
    assert len(endpoint.at("/team-a")) == 4
    assert endpoint.at("/team-b") == []


async def test_a_subscription_gets_only_the_event_types_it_asked_for(
    alerting: Alerting, endpoint: Receiver
) -> None:
    await_ = await subscribed(alerting, endpoint, event_types=["obligation.escalated"])
    tenant, _ = await_
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    assert {r.payload["type"] for r in endpoint.at("/hooks")} == {"obligation.escalated"}


async def test_a_subscription_gets_only_the_rules_it_asked_for(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, _ = await subscribed(alerting, endpoint, rule_ids=["first-contact"])
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    rules = {r.payload["data"]["rule"]["id"] for r in endpoint.at("/hooks")}
    assert rules == {"first-contact"}


async def test_another_organisations_subscription_gets_nothing(
    alerting: Alerting, endpoint: Receiver
) -> None:
    _, _ = await subscribed(alerting, endpoint, "/other-org")
    tenant = await alerting.tenant()
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    assert endpoint.at("/other-org") == []


# Retries


async def test_a_500_then_200_is_retried_with_the_same_webhook_id_and_succeeds_once(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(
        alerting, endpoint, event_types=["obligation.overdue"], rule_ids=["referral-decision"]
    )
    endpoint.answer("/hooks", 500)
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    alerting.clock.now += timedelta(seconds=10)
    await alerting.deliver()
    first, second = endpoint.at("/hooks")
    assert first.webhook_id == second.webhook_id
    assert second.verifies_with(subscription["secret"])
    (delivery,) = await deliveries_log(tenant, subscription["id"])
    assert delivery["status"] == "succeeded"
    assert [(a["status_code"], a["outcome"]) for a in delivery["attempts"]] == [
        (500, "retrying"),
        (200, "succeeded"),
    ]


async def test_a_failed_attempt_waits_its_scheduled_delay_with_jitter(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint, event_types=["obligation.overdue"])
    endpoint.answer("/hooks", 500, 500)
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    log = await deliveries_log(tenant, subscription["id"])
    delays = [datetime.fromisoformat(d["next_attempt_at"]) - START for d in log]
    assert all(timedelta(seconds=4) <= delay <= timedelta(seconds=6) for delay in delays)


async def test_a_receivers_retry_after_is_honoured(alerting: Alerting, endpoint: Receiver) -> None:
    tenant, subscription = await subscribed(alerting, endpoint, event_types=["obligation.overdue"])
    endpoint.answer("/hooks", *(Answer(503, {"Retry-After": "120"}),) * 2)
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    for delivery in await deliveries_log(tenant, subscription["id"]):
        assert datetime.fromisoformat(delivery["next_attempt_at"]) - START >= timedelta(seconds=120)
        assert delivery["last_error"] == "receiver answered 503"


HOSTILE_RETRY_AFTER = [
    "100000000000000",  # overflows a timedelta
    "9" * 5000,  # over the longest integer Python converts from text
    "\u00b2",  # a digit to str.isdigit(), not to int()
    "-5",
    "1.5",
    "Fri, 31 Dec 9999 23:59:59 GMT",  # the last date a datetime holds
    "Mon, 99 Foo 2026 25:61:61 GMT",
    "soon",
]


@pytest.mark.parametrize("header", HOSTILE_RETRY_AFTER)
async def test_any_retry_after_a_receiver_sends_is_recorded_with_a_bounded_retry(
    alerting: Alerting, endpoint: Receiver, header: str
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint, rule_ids=["referral-decision"])
    endpoint.answer("/hooks", *(Answer(503, {"Retry-After": header}),) * 2)
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    log = await deliveries_log(tenant, subscription["id"])
    assert log
    for delivery in log:
        assert [a["outcome"] for a in delivery["attempts"]] == ["retrying"]
        waited = datetime.fromisoformat(delivery["next_attempt_at"]) - START
        assert timedelta(seconds=4) <= waited <= timedelta(hours=24)


async def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint, event_types=["obligation.overdue"])
    endpoint.answer("/hooks", *(Answer(307, {"Location": endpoint.url("/elsewhere")}),) * 2)
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    assert endpoint.at("/elsewhere") == []
    assert {d["status"] for d in await deliveries_log(tenant, subscription["id"])} == {"pending"}


async def test_with_the_receiver_down_retries_follow_the_schedule_then_the_delivery_fails(
    alerting: Alerting,
) -> None:
    tenant = await alerting.tenant()
    url = f"http://127.0.0.1:{closed_port()}/hooks"
    subscription = await subscribe(tenant, url, rule_ids=["referral-decision"])
    await post(tenant.writer, referral("C-1", BACKDATED))
    expected = [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30)]
    for delay in expected:
        await alerting.deliver()
        for delivery in await deliveries_log(tenant, subscription["id"]):
            last = datetime.fromisoformat(delivery["attempts"][-1]["attempted_at"])
            waited = datetime.fromisoformat(delivery["next_attempt_at"]) - last
            assert delay * 0.8 <= waited <= delay * 1.2
        alerting.clock.now += delay * 1.2
    await alerting.deliver()
    log = await deliveries_log(tenant, subscription["id"])
    assert {d["status"] for d in log} == {"failed"}
    assert all(len(d["attempts"]) == 4 for d in log)
    assert all(d["attempts"][-1]["outcome"] == "failed" for d in log)
    assert all(d["attempts"][0]["status_code"] is None for d in log)
    assert all(d["attempts"][0]["error"] for d in log)


async def test_a_failed_delivery_can_be_redelivered_with_the_same_webhook_id(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(
        alerting, endpoint, event_types=["obligation.overdue"], rule_ids=["referral-decision"]
    )
    endpoint.answer("/hooks", *[500] * 4)
    await post(tenant.writer, referral("C-1", BACKDATED))
    for _ in range(4):
        await alerting.deliver()
        alerting.clock.now += timedelta(hours=1)
    (failed,) = await deliveries_log(tenant, subscription["id"])
    assert failed["status"] == "failed"
    response = await tenant.admin.post(f"/v1/deliveries/{failed['id']}/redeliver")
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    await alerting.deliver()
    (redelivered,) = await deliveries_log(tenant, subscription["id"])
    assert redelivered["status"] == "succeeded"
    assert endpoint.at("/hooks")[-1].webhook_id == failed["id"]
    assert len(redelivered["attempts"]) == 5


async def test_a_pending_delivery_cannot_be_redelivered(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint, event_types=["obligation.overdue"])
    await post(tenant.writer, referral("C-1", BACKDATED, team_id="T-A"))
    await post(tenant.writer, referral("C-2", "2026-11-20T09:00:00Z"))
    await alerting.deliver()
    alerting.clock.now = datetime.fromisoformat("2026-11-24T01:00:00+00:00")
    await alerting.sweep()
    endpoint.answer("/hooks", 500)
    await alerting.deliver()
    pending = await tenant.admin.get(
        f"/v1/webhooks/{subscription['id']}/deliveries", params={"status": "pending"}
    )
    (item,) = pending.json()["items"]
    response = await tenant.admin.post(f"/v1/deliveries/{item['id']}/redeliver")
    assert response.status_code == 409


# Subscription health


async def test_a_410_disables_the_subscription(alerting: Alerting, endpoint: Receiver) -> None:
    tenant, subscription = await subscribed(alerting, endpoint)
    endpoint.answer("/hooks", 410)
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    after = await webhook(tenant, subscription["id"])
    assert after["enabled"] is False
    assert "410" in after["disabled_reason"]


async def test_a_410_gives_up_the_subscriptions_pending_deliveries(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint, event_types=["obligation.overdue"])
    endpoint.answer("/hooks", 500, 410)  # one delivery is retrying when the other is told 410
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    log = await deliveries_log(tenant, subscription["id"])
    assert {d["status"] for d in log} == {"failed"}
    assert any("subscription disabled" in d["last_error"] for d in log)


async def test_a_disabled_subscription_gets_no_new_deliveries(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint)
    response = await tenant.admin.patch(
        f"/v1/webhooks/{subscription['id']}", json={"enabled": False}
    )
    assert response.status_code == 200
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    assert endpoint.at("/hooks") == []


async def test_a_subscription_failing_longer_than_disable_after_is_disabled(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint, event_types=["obligation.overdue"])
    endpoint.answer("/hooks", *[500] * 4)
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    assert (await webhook(tenant, subscription["id"]))["failing_since"] == "2026-11-20T12:00:00Z"
    alerting.clock.now += timedelta(days=1, minutes=1)
    await alerting.deliver()
    after = await webhook(tenant, subscription["id"])
    assert after["enabled"] is False
    assert "no successful delivery" in after["disabled_reason"]


async def test_a_success_clears_the_failing_mark(alerting: Alerting, endpoint: Receiver) -> None:
    tenant, subscription = await subscribed(alerting, endpoint, event_types=["obligation.overdue"])
    endpoint.answer("/hooks", 500, 500)
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    alerting.clock.now += timedelta(seconds=10)
    await alerting.deliver()
    assert (await webhook(tenant, subscription["id"]))["failing_since"] is None


# Secrets, pings and targets


async def test_during_a_rotation_both_secrets_sign_every_message(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint, event_types=["obligation.overdue"])
    rotated = (await tenant.admin.post(f"/v1/webhooks/{subscription['id']}/rotate-secret")).json()
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    message = endpoint.at("/hooks")[0]
    assert len(message.headers["webhook-signature"].split(" ")) == 2
    assert message.verifies_with(subscription["secret"])
    assert message.verifies_with(rotated["secret"])


async def test_the_old_secret_stops_signing_24_hours_after_a_rotation(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint, event_types=["obligation.overdue"])
    rotated = (await tenant.admin.post(f"/v1/webhooks/{subscription['id']}/rotate-secret")).json()
    alerting.clock.now += timedelta(hours=24, seconds=1)
    await post(tenant.writer, referral("C-1", BACKDATED))
    await alerting.deliver()
    message = endpoint.at("/hooks")[0]
    assert len(message.headers["webhook-signature"].split(" ")) == 1
    assert message.verifies_with(rotated["secret"])


async def test_a_test_ping_is_delivered_signed(alerting: Alerting, endpoint: Receiver) -> None:
    tenant, subscription = await subscribed(alerting, endpoint)
    response = await tenant.admin.post(f"/v1/webhooks/{subscription['id']}/test")
    assert response.status_code == 202
    await alerting.deliver()
    (ping,) = endpoint.at("/hooks")
    assert ping.webhook_id == response.json()["id"]
    assert ping.payload["type"] == "webhook.test"
    assert ping.verifies_with(subscription["secret"])


async def deliver_refusing_private_targets(alerting: Alerting) -> None:
    """One delivery run with the production guard on (the harness allows localhost)."""
    strict = WebhookSender(timeout_seconds=2, allow_private=False, concurrency=4)
    try:
        alerting.sender, relaxed = strict, alerting.sender
        await alerting.deliver()
    finally:
        alerting.sender = relaxed
        await strict.aclose()


async def test_a_private_target_is_refused_at_delivery_without_connecting(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(alerting, endpoint, event_types=["obligation.overdue"])
    await post(tenant.writer, referral("C-1", BACKDATED))
    await deliver_refusing_private_targets(alerting)
    assert endpoint.at("/hooks") == []
    log = await deliveries_log(tenant, subscription["id"])
    assert all("not a public address" in d["attempts"][0]["error"] for d in log)


async def test_a_name_resolving_to_a_private_address_is_refused_at_delivery(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant = await alerting.tenant()
    subscription = await subscribe(
        tenant, f"http://localhost:{endpoint.port}/hooks", event_types=["obligation.overdue"]
    )
    await post(tenant.writer, referral("C-1", BACKDATED))
    await deliver_refusing_private_targets(alerting)
    assert endpoint.at("/hooks") == []
    log = await deliveries_log(tenant, subscription["id"])
    assert all("no public address" in d["attempts"][0]["error"] for d in log)


# Leases


async def test_a_delivery_whose_lease_ran_out_is_sent_again_and_succeeds_once(
    alerting: Alerting, endpoint: Receiver
) -> None:
    """As when a replica dies mid-POST: its claim lapses, another claim sends the message
    with the same webhook-id, and the dead claim's late result cannot record a second success."""
    tenant, subscription = await subscribed(alerting, endpoint, event_types=["obligation.overdue"])
    await post(tenant.writer, referral("C-1", BACKDATED, team_id="T-A"))
    await post(tenant.writer, referral("C-2", "2026-11-20T09:00:00Z"))
    await alerting.deliver()  # the first overdue alert, delivered
    alerting.clock.now = datetime.fromisoformat("2026-11-24T01:00:00+00:00")
    await alerting.sweep()  # C-2's referral-decision is overdue now
    factory = alerting.app.state.session_factory
    now = alerting.clock.now
    async with transaction(factory) as session:  # the claim of a replica about to die
        await fan_out(session, now, 1000)
    async with transaction(factory) as session:
        claims = [
            c
            for c in await claim_due(session, now, 100, now + alerting.config.lease)
            if c.org_id == tenant.org_id
        ]
    (lost,) = claims
    alerting.clock.now += alerting.config.lease + timedelta(seconds=1)
    await alerting.deliver()
    async with transaction(factory) as session:
        recorded = await record_attempts(
            session,
            [
                Decided(
                    claim=lost,
                    attempted_at=now,
                    status_code=200,
                    latency_ms=5,
                    error=None,
                    outcome="succeeded",
                    next_attempt_at=None,
                    disable_reason=None,
                )
            ],
        )
    assert [outcome for _, outcome in recorded.outcomes] == ["superseded"]
    (delivery,) = [
        d for d in await deliveries_log(tenant, subscription["id"]) if d["id"] == lost.delivery_id
    ]
    assert delivery["status"] == "succeeded"
    assert [a["outcome"] for a in delivery["attempts"]] == ["superseded", "succeeded"]
    assert [r.webhook_id for r in endpoint.at("/hooks")].count(lost.delivery_id) == 1


async def test_a_claim_handed_back_unsent_is_due_again_at_once_and_not_counted(
    alerting: Alerting, endpoint: Receiver
) -> None:
    tenant, subscription = await subscribed(
        alerting, endpoint, event_types=["obligation.overdue"], rule_ids=["referral-decision"]
    )
    await post(tenant.writer, referral("C-1", BACKDATED))
    factory = alerting.app.state.session_factory
    now = alerting.clock.now
    async with transaction(factory) as session:
        await fan_out(session, now, 1000)
    async with transaction(factory) as session:
        claims = await claim_due(session, now, 1000, now + alerting.config.lease)
    async with transaction(factory) as session:
        await release_claims(session, claims, now)
    await alerting.deliver()
    (delivery,) = await deliveries_log(tenant, subscription["id"])
    assert delivery["status"] == "succeeded"
    assert [a["attempt"] for a in delivery["attempts"]] == [1]
