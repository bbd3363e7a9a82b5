"""The subscriptions API: create (secret shown once), list, get, patch, delete, ping, rotate,
deliveries, redeliver; scope `webhooks:manage`; URLs to internal addresses refused.

Subscriptions here point at a public address that is never connected to: this app runs no
scheduler, and every test's subscriptions are deleted after it, deliveries and all.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import FixedClock, Tenant, make_tenant
from fastapi import FastAPI
from standardwebhooks.webhooks import Webhook

from service.store.db import transaction
from service.store.orgs import create_api_key
from service.store.tables import subscriptions

PUBLIC_URL = "https://93.184.215.14/caseclock-hooks"


@pytest.fixture(autouse=True)
async def _nothing_left_to_deliver(app: FastAPI) -> AsyncIterator[None]:
    yield
    async with transaction(app.state.session_factory) as session:
        await session.execute(subscriptions.delete().where(subscriptions.c.url == PUBLIC_URL))


async def create(tenant: Tenant, **body: Any) -> httpx.Response:
    return await tenant.admin.post("/v1/webhooks", json={"url": PUBLIC_URL, **body})


async def created(tenant: Tenant, **body: Any) -> dict[str, Any]:
    response = await create(tenant, **body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


# Create


async def test_creating_a_subscription_returns_201_with_its_id_and_secret(tenant: Tenant) -> None:
    body = await created(tenant, description="ops")
    assert body["id"].startswith("wh_")
    assert body["secret"].startswith("whsec_")
    assert body["url"] == PUBLIC_URL
    assert body["description"] == "ops"
    assert body["enabled"] is True


async def test_the_secret_is_24_or_more_random_bytes_that_standard_webhooks_accepts(
    tenant: Tenant,
) -> None:
    secret = (await created(tenant))["secret"]
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) >= 24
    Webhook(secret)


async def test_filters_are_stored_as_given(tenant: Tenant) -> None:
    body = await created(
        tenant,
        event_types=["obligation.overdue", "obligation.escalated"],
        team_ids=["T-A"],
        rule_ids=["referral-decision"],
    )
    assert body["event_types"] == ["obligation.escalated", "obligation.overdue"]
    assert body["team_ids"] == ["T-A"]
    assert body["rule_ids"] == ["referral-decision"]


async def test_omitted_filters_mean_everything(tenant: Tenant) -> None:
    body = await created(tenant)
    assert (body["event_types"], body["team_ids"], body["rule_ids"]) == (None, None, None)


async def test_an_unknown_event_type_is_refused_with_a_pointer(tenant: Tenant) -> None:
    response = await create(tenant, event_types=["obligation.exploded"])
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/event_types/0"


async def test_an_empty_filter_is_refused(tenant: Tenant) -> None:
    response = await create(tenant, team_ids=[])
    assert response.status_code == 422


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://169.254.169.254/",
        "http://10.0.0.1/",
        "http://[::1]/hooks",
        "http://192.168.1.20:8080/",
        "http://100.64.0.1/",
        "http://localhost/hooks",
    ],
)
async def test_a_url_to_an_internal_address_is_refused_with_422(tenant: Tenant, url: str) -> None:
    response = await tenant.admin.post("/v1/webhooks", json={"url": url})
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["pointer"] == "/url"
    assert "refused" in error["detail"]


@pytest.mark.parametrize("url", ["ftp://93.184.215.14/", "file:///etc/passwd", "not a url"])
async def test_a_url_that_is_not_http_is_refused(tenant: Tenant, url: str) -> None:
    response = await tenant.admin.post("/v1/webhooks", json={"url": url})
    assert response.status_code == 422


async def test_a_key_without_the_scope_gets_403(tenant: Tenant) -> None:
    response = await tenant.reader.post("/v1/webhooks", json={"url": PUBLIC_URL})
    assert response.status_code == 403


async def test_a_webhooks_manage_key_may_manage_subscriptions(app: FastAPI, tenant: Tenant) -> None:
    async with transaction(app.state.session_factory) as session:
        _, key = await create_api_key(
            session,
            org_id=tenant.org_id,
            scopes=frozenset({"webhooks:manage"}),
            name="hooks",
            now=datetime(2026, 1, 1, tzinfo=UTC),
        )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://caseclock.test",
        headers={"Authorization": f"Bearer {key}"},
    ) as manager:
        response = await manager.post("/v1/webhooks", json={"url": PUBLIC_URL})
    assert response.status_code == 201


async def test_no_key_gets_401(tenant: Tenant) -> None:
    response = await tenant.anonymous.get("/v1/webhooks")
    assert response.status_code == 401


# Read


async def test_a_subscription_is_read_back_without_its_secret(tenant: Tenant) -> None:
    subscription = await created(tenant)
    body = (await tenant.admin.get(f"/v1/webhooks/{subscription['id']}")).json()
    assert body["id"] == subscription["id"]
    assert "secret" not in body


async def test_the_list_pages_oldest_first(tenant: Tenant, clock: FixedClock) -> None:
    ids = []
    for minute in range(3):
        clock.now = datetime(2026, 11, 20, 12, minute, tzinfo=UTC)
        ids.append((await created(tenant))["id"])
    first = (await tenant.admin.get("/v1/webhooks", params={"limit": 2})).json()
    assert [s["id"] for s in first["items"]] == ids[:2]
    second = (
        await tenant.admin.get("/v1/webhooks", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    assert [s["id"] for s in second["items"]] == ids[2:]
    assert second["next_cursor"] is None


async def test_another_organisations_subscription_is_not_found(
    app: FastAPI, tenant: Tenant
) -> None:
    other = await make_tenant(app)
    subscription = await created(other)
    response = await tenant.admin.get(f"/v1/webhooks/{subscription['id']}")
    assert response.status_code == 404
    assert (await tenant.admin.get("/v1/webhooks")).json()["items"] == []


async def test_an_unknown_subscription_is_404(tenant: Tenant) -> None:
    response = await tenant.admin.get(f"/v1/webhooks/wh_{uuid.uuid4().hex}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


# Patch and delete


async def test_patching_changes_only_the_fields_given(tenant: Tenant) -> None:
    subscription = await created(tenant, description="ops", team_ids=["T-A"])
    response = await tenant.admin.patch(
        f"/v1/webhooks/{subscription['id']}", json={"rule_ids": ["first-contact"]}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["rule_ids"] == ["first-contact"]
    assert body["team_ids"] == ["T-A"]
    assert body["description"] == "ops"


async def test_patching_a_filter_to_null_means_everything_again(tenant: Tenant) -> None:
    subscription = await created(tenant, team_ids=["T-A"])
    response = await tenant.admin.patch(
        f"/v1/webhooks/{subscription['id']}", json={"team_ids": None}
    )
    assert response.json()["team_ids"] is None


async def test_patching_the_url_to_an_internal_address_is_refused(tenant: Tenant) -> None:
    subscription = await created(tenant)
    response = await tenant.admin.patch(
        f"/v1/webhooks/{subscription['id']}", json={"url": "http://169.254.169.254/latest"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/url"


async def test_disabling_and_enabling_through_patch(tenant: Tenant) -> None:
    subscription = await created(tenant)
    url = f"/v1/webhooks/{subscription['id']}"
    disabled = (await tenant.admin.patch(url, json={"enabled": False})).json()
    assert disabled["enabled"] is False
    assert disabled["disabled_reason"] == "disabled through the API"
    enabled = (await tenant.admin.patch(url, json={"enabled": True})).json()
    assert enabled["enabled"] is True
    assert enabled["disabled_reason"] is None


async def test_deleting_a_subscription_removes_it_and_its_deliveries(tenant: Tenant) -> None:
    subscription = await created(tenant)
    ping = (await tenant.admin.post(f"/v1/webhooks/{subscription['id']}/test")).json()
    response = await tenant.admin.delete(f"/v1/webhooks/{subscription['id']}")
    assert response.status_code == 204
    assert (await tenant.admin.get(f"/v1/webhooks/{subscription['id']}")).status_code == 404
    assert (await tenant.admin.get(f"/v1/deliveries/{ping['id']}")).status_code == 404


# Ping, rotate, deliveries, redeliver


async def test_a_test_ping_is_queued_as_a_pending_delivery(tenant: Tenant) -> None:
    subscription = await created(tenant)
    response = await tenant.admin.post(f"/v1/webhooks/{subscription['id']}/test")
    assert response.status_code == 202
    ping = response.json()
    assert ping["id"].startswith("msg_")
    assert ping["status"] == "pending"
    assert ping["type"] == "webhook.test"
    assert ping["payload"]["data"]["subscription_id"] == subscription["id"]
    log = (await tenant.admin.get(f"/v1/webhooks/{subscription['id']}/deliveries")).json()
    assert [d["id"] for d in log["items"]] == [ping["id"]]
    await tenant.admin.delete(f"/v1/webhooks/{subscription['id']}")


async def test_a_disabled_subscription_cannot_be_pinged(tenant: Tenant) -> None:
    subscription = await created(tenant)
    await tenant.admin.patch(f"/v1/webhooks/{subscription['id']}", json={"enabled": False})
    response = await tenant.admin.post(f"/v1/webhooks/{subscription['id']}/test")
    assert response.status_code == 409


async def test_rotating_returns_a_new_secret_and_when_the_old_one_stops_signing(
    tenant: Tenant,
) -> None:
    subscription = await created(tenant)
    response = await tenant.admin.post(f"/v1/webhooks/{subscription['id']}/rotate-secret")
    assert response.status_code == 200
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["secret"] != subscription["secret"]
    assert body["previous_secret_expires_at"] == "2026-11-21T12:00:00Z"


async def test_the_deliveries_log_filters_by_status(tenant: Tenant) -> None:
    subscription = await created(tenant)
    await tenant.admin.post(f"/v1/webhooks/{subscription['id']}/test")
    url = f"/v1/webhooks/{subscription['id']}/deliveries"
    assert len((await tenant.admin.get(url, params={"status": "pending"})).json()["items"]) == 1
    assert (await tenant.admin.get(url, params={"status": "failed"})).json()["items"] == []
    await tenant.admin.delete(f"/v1/webhooks/{subscription['id']}")


async def test_redelivering_an_unknown_delivery_is_404(tenant: Tenant) -> None:
    response = await tenant.admin.post("/v1/deliveries/msg_nothing/redeliver")
    assert response.status_code == 404


async def test_redelivering_a_pending_delivery_is_409(tenant: Tenant) -> None:
    subscription = await created(tenant)
    ping = (await tenant.admin.post(f"/v1/webhooks/{subscription['id']}/test")).json()
    response = await tenant.admin.post(f"/v1/deliveries/{ping['id']}/redeliver")
    assert response.status_code == 409
    await tenant.admin.delete(f"/v1/webhooks/{subscription['id']}")


# Metrics


async def test_metrics_are_prometheus_text(tenant: Tenant) -> None:
    response = await tenant.anonymous.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "caseclock_events_ingested_total",
        "caseclock_alerts_enqueued_total",
        "caseclock_webhook_deliveries_total",
        "caseclock_webhook_delivery_latency_seconds",
        'caseclock_outbox_backlog{kind="deliveries"}',
        "caseclock_sweep_duration_seconds",
    ):
        assert name in text


async def test_ingesting_an_event_counts_it_and_its_alerts(tenant: Tenant) -> None:
    def sample(text: str, name: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    before = (await tenant.anonymous.get("/metrics")).text
    await tenant.writer.post(
        "/v1/events",
        json={
            "id": "metrics-1",
            "type": "referral_received",
            "case_id": "C-1",
            "occurred_at": "2026-11-02T09:00:00Z",
        },
    )
    after = (await tenant.anonymous.get("/metrics")).text
    events = "caseclock_events_ingested_total"
    assert sample(after, events) - sample(before, events) == 1
    overdue = 'caseclock_alerts_enqueued_total{type="obligation.overdue"}'
    assert sample(after, overdue) - sample(before, overdue) == 2
