"""Bearer API keys: 401 for no or unknown key, 403 for a missing scope, admin holds every scope."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from conftest import Tenant
from fastapi import FastAPI
from sqlalchemy import update

from service.api.deps import KeyCache
from service.store.db import transaction
from service.store.orgs import Principal, create_api_key
from service.store.tables import ApiKey

EVENT = {
    "id": "ev-1",
    "type": "referral_received",
    "case_id": "C-1",
    "occurred_at": "2026-11-02T10:15:00Z",
}
RULES = '{"builtin": "england-adults"}'


def assert_unauthorised(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"


def assert_forbidden(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


async def test_a_request_without_a_key_is_401_with_a_bearer_challenge(tenant: Tenant) -> None:
    assert_unauthorised(await tenant.anonymous.get("/v1/obligations"))


async def test_an_unknown_key_is_401_with_a_bearer_challenge(tenant: Tenant) -> None:
    response = await tenant.anonymous.get(
        "/v1/obligations", headers={"Authorization": "Bearer cc_not-a-real-key"}
    )
    assert_unauthorised(response)


async def test_a_non_bearer_authorisation_is_401(tenant: Tenant) -> None:
    response = await tenant.anonymous.get(
        "/v1/obligations", headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert_unauthorised(response)


async def test_an_empty_bearer_token_is_401(tenant: Tenant) -> None:
    response = await tenant.anonymous.get("/v1/obligations", headers={"Authorization": "Bearer "})
    assert_unauthorised(response)


async def test_posting_an_event_without_a_key_is_401_and_stores_nothing(tenant: Tenant) -> None:
    assert_unauthorised(await tenant.anonymous.post("/v1/events", json=EVENT))
    assert (await tenant.reader.get("/v1/events")).json()["items"] == []


async def test_a_read_key_cannot_post_events(tenant: Tenant) -> None:
    body = assert_forbidden(await tenant.reader.post("/v1/events", json=EVENT))
    assert "events:write" in body["detail"]


async def test_a_read_key_cannot_post_a_batch(tenant: Tenant) -> None:
    assert_forbidden(await tenant.reader.post("/v1/events/batch", json={"events": [EVENT]}))


async def test_a_read_key_cannot_void_events(tenant: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=EVENT)
    response = await tenant.reader.post("/v1/events/ev-1/void", json={"reason": "x"})
    assert_forbidden(response)


@pytest.mark.parametrize(
    "path", ["/v1/obligations", "/v1/events", "/v1/cases/C-1", "/v1/rules", "/v1/rulesets"]
)
async def test_a_write_key_cannot_read(tenant: Tenant, path: str) -> None:
    body = assert_forbidden(await tenant.writer.get(path))
    assert "read" in body["detail"]


@pytest.mark.parametrize("client", ["reader", "writer"])
async def test_only_an_admin_key_can_put_rules(tenant: Tenant, client: str) -> None:
    caller: httpx.AsyncClient = getattr(tenant, client)
    response = await caller.put(
        "/v1/rules", content=RULES, headers={"Content-Type": "application/json"}
    )
    body = assert_forbidden(response)
    assert "admin" in body["detail"]


async def test_a_refused_rules_change_leaves_the_active_ruleset(tenant: Tenant) -> None:
    await tenant.writer.put(
        "/v1/rules", content=RULES, headers={"Content-Type": "application/json"}
    )
    assert (await tenant.reader.get("/v1/rules")).json()["id"] == "england-children"


async def test_an_admin_key_can_post_events(tenant: Tenant) -> None:
    assert (await tenant.admin.post("/v1/events", json=EVENT)).status_code == 201


async def test_an_admin_key_can_read(tenant: Tenant) -> None:
    await tenant.admin.post("/v1/events", json=EVENT)
    assert (await tenant.admin.get("/v1/obligations")).status_code == 200
    assert (await tenant.admin.get("/v1/cases/C-1")).status_code == 200


async def test_an_admin_key_can_put_rules(tenant: Tenant) -> None:
    response = await tenant.admin.put(
        "/v1/rules", content=RULES, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 202


async def test_health_endpoints_need_no_key(tenant: Tenant) -> None:
    assert (await tenant.anonymous.get("/healthz")).status_code == 200
    assert (await tenant.anonymous.get("/readyz")).status_code == 200


async def test_a_revoked_key_is_401(app: FastAPI, tenant: Tenant) -> None:
    now = datetime(2026, 11, 1, tzinfo=UTC)
    async with transaction(app.state.session_factory) as session:
        key, plaintext = await create_api_key(
            session, org_id=tenant.org_id, scopes=frozenset({"read"}), name="temp", now=now
        )
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert (await tenant.anonymous.get("/v1/obligations", headers=headers)).status_code == 200
    async with transaction(app.state.session_factory) as session:
        await session.execute(
            update(ApiKey).where(ApiKey.id == key.id).values(revoked_at=now)  # type: ignore[arg-type]
        )
    app.state.key_cache.forget_org(tenant.org_id)  # what waiting KEY_CACHE_SECONDS does
    assert_unauthorised(await tenant.anonymous.get("/v1/obligations", headers=headers))


PRINCIPAL = Principal("org", "key", frozenset({"read"}), "england-children", None, "toml")


async def test_a_cached_key_is_looked_up_again_once_its_entry_expires() -> None:
    cache, lookups = KeyCache(ttl=0.05), []

    async def look_up(token: str) -> Principal:
        lookups.append(token)
        return PRINCIPAL

    assert await cache.resolve("cc_secret", look_up) == PRINCIPAL
    assert await cache.resolve("cc_secret", look_up) == PRINCIPAL
    assert lookups == ["cc_secret"]
    await asyncio.sleep(0.1)
    assert await cache.resolve("cc_secret", look_up) == PRINCIPAL
    assert lookups == ["cc_secret", "cc_secret"]


async def test_requests_that_miss_the_key_cache_together_share_one_lookup() -> None:
    cache, lookups = KeyCache(), []

    async def look_up(token: str) -> Principal:
        lookups.append(token)
        await asyncio.sleep(0.05)
        return PRINCIPAL

    found = await asyncio.gather(*(cache.resolve("cc_secret", look_up) for _ in range(20)))
    assert found == [PRINCIPAL] * 20
    assert lookups == ["cc_secret"]
    assert await cache.resolve("cc_secret", look_up) == PRINCIPAL
    assert lookups == ["cc_secret"]


async def test_a_caller_that_gives_up_leaves_the_shared_key_lookup_to_the_others() -> None:
    cache, release = KeyCache(), asyncio.Event()

    async def look_up(_token: str) -> Principal:
        await release.wait()
        return PRINCIPAL

    impatient = asyncio.create_task(cache.resolve("cc_secret", look_up))
    patient = asyncio.create_task(cache.resolve("cc_secret", look_up))
    await asyncio.sleep(0)
    impatient.cancel()
    release.set()
    assert await patient == PRINCIPAL
    with pytest.raises(asyncio.CancelledError):
        await impatient


async def test_an_unknown_key_is_not_remembered() -> None:
    cache, answers = KeyCache(), [None, PRINCIPAL]

    async def look_up(_token: str) -> Principal | None:
        return answers.pop(0)

    assert await cache.resolve("cc_new", look_up) is None
    assert await cache.resolve("cc_new", look_up) == PRINCIPAL
