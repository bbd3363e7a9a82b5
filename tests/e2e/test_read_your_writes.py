"""Read-your-writes over a real socket: a read sent the moment a write's 2xx arrives sees the
write. Over HTTP (not in-process) the client has the response as soon as it is sent, so a
commit that ran after the response would show here as a read that misses the write."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from conftest import Tenant
from fastapi import FastAPI

ROUNDS = 20
PUBLIC_URL = "https://93.184.215.14/caseclock-ryw"
RULES_TOML = """\
event_types = ["family_meeting_requested", "family_meeting_held"]

[[rules]]
id = "family-meeting-{n}"
name = "Family meeting within 10 working days of the request"
source = "Local practice standard"
starts_on = ["family_meeting_requested"]
due = "10 working days"
met_by = ["family_meeting_held"]
"""


@pytest.fixture
async def base_url(app: FastAPI) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(1000):  # bounded: ten seconds at most
        if server.started:
            break
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


@pytest.fixture
async def over_http(base_url: str, tenant: Tenant) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    clients = {
        name: httpx.AsyncClient(base_url=base_url, headers=dict(client.headers))
        for name, client in (
            ("admin", tenant.admin),
            ("writer", tenant.writer),
            ("reader", tenant.reader),
        )
    }
    yield clients
    for client in clients.values():
        await client.aclose()


def referral(case_id: str) -> dict[str, Any]:
    return {
        "id": f"E-{uuid.uuid4().hex[:8]}",
        "type": "referral_received",
        "case_id": case_id,
        "occurred_at": "2026-11-16T10:00:00Z",
    }


async def test_a_batched_event_is_readable_the_moment_its_batch_is_acknowledged(
    over_http: dict[str, httpx.AsyncClient],
) -> None:
    writer, reader = over_http["writer"], over_http["reader"]
    for n in range(ROUNDS):
        posted = referral(f"C-{n}")
        assert (await writer.post("/v1/events/batch", json={"events": [posted]})).status_code == 200
        read = await reader.get("/v1/events", params={"case_id": f"C-{n}"})
        assert [e["id"] for e in read.json()["items"]] == [posted["id"]]


async def test_a_void_is_readable_the_moment_it_is_acknowledged(
    over_http: dict[str, httpx.AsyncClient],
) -> None:
    writer, reader = over_http["writer"], over_http["reader"]
    for n in range(ROUNDS):
        posted = referral(f"C-{n}")
        assert (await writer.post("/v1/events", json=posted)).status_code == 201
        voided = await writer.post(f"/v1/events/{posted['id']}/void", json={"reason": "mistake"})
        assert voided.status_code == 200
        read = await reader.get("/v1/events", params={"case_id": f"C-{n}"})
        assert read.json()["items"][0]["voided_at"] is not None


async def test_a_webhook_and_its_rotated_secret_are_readable_the_moment_they_are_acknowledged(
    over_http: dict[str, httpx.AsyncClient],
) -> None:
    admin = over_http["admin"]
    for _ in range(ROUNDS):
        created = await admin.post("/v1/webhooks", json={"url": PUBLIC_URL})
        assert created.status_code == 201
        url = f"/v1/webhooks/{created.json()['id']}"
        assert (await admin.get(url)).status_code == 200
        assert (await admin.post(f"{url}/rotate-secret")).status_code == 200
        assert (await admin.get(url)).json()["previous_secret_expires_at"] is not None
        assert (await admin.delete(url)).status_code == 204
        assert (await admin.get(url)).status_code == 404


async def test_a_ruleset_is_active_the_moment_it_is_acknowledged(
    over_http: dict[str, httpx.AsyncClient],
) -> None:
    admin = over_http["admin"]
    for n in range(ROUNDS):
        toml = RULES_TOML.format(n=n)
        put = await admin.put(
            "/v1/rules", content=toml, headers={"Content-Type": "application/toml"}
        )
        assert put.status_code == 202, put.text
        rules = (await admin.get("/v1/rules")).json()
        assert f"family-meeting-{n}" in str(rules)
