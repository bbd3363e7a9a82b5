"""A 2xx means committed: every write commits before its response is sent, and a commit that
fails is answered 503 problem+json with Retry-After, with nothing stored.

The commit fails at the driver boundary: the engine's `commit` event raises the error a lost
connection raises, before the database is asked to commit, so the transaction is rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from conftest import Tenant
from fastapi import FastAPI
from imports.workbooks import annex_a_sheet, build_workbook
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PUBLIC_URL = "https://93.184.215.14/caseclock-commit"
RULES_TOML = """\
event_types = ["family_meeting_requested", "family_meeting_held"]

[[rules]]
id = "family-meeting"
name = "Family meeting within 10 working days of the request"
source = "Local practice standard"
starts_on = ["family_meeting_requested"]
due = "10 working days"
met_by = ["family_meeting_held"]
"""


@contextmanager
def commits_fail(app: FastAPI) -> Iterator[None]:
    def lost(_connection: Any) -> None:
        raise OperationalError("COMMIT", None, ConnectionError("the connection was lost"))

    engine = app.state.engine.sync_engine
    event.listen(engine, "commit", lost)
    try:
        yield
    finally:
        event.remove(engine, "commit", lost)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["status"] == 503


def referral(case_id: str) -> dict[str, Any]:
    return {
        "id": f"E-{uuid.uuid4().hex[:8]}",
        "type": "referral_received",
        "case_id": case_id,
        "occurred_at": "2026-11-16T10:00:00Z",
    }


async def events_of(tenant: Tenant, case_id: str) -> list[dict[str, Any]]:
    response = await tenant.reader.get("/v1/events", params={"case_id": case_id})
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def webhooks(tenant: Tenant) -> list[dict[str, Any]]:
    response = await tenant.admin.get("/v1/webhooks")
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@pytest.fixture
async def subscription(tenant: Tenant) -> AsyncIterator[dict[str, Any]]:
    response = await tenant.admin.post("/v1/webhooks", json={"url": PUBLIC_URL})
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    yield body
    await tenant.admin.delete(f"/v1/webhooks/{body['id']}")


async def test_a_single_event_whose_commit_fails_is_503_and_not_stored(
    app: FastAPI, tenant: Tenant
) -> None:
    with commits_fail(app):
        assert_unavailable(await tenant.writer.post("/v1/events", json=referral("C-1")))
    assert await events_of(tenant, "C-1") == []


async def test_a_batch_whose_commit_fails_is_503_and_none_of_it_stored(
    app: FastAPI, tenant: Tenant
) -> None:
    batch = {"events": [referral("C-1"), referral("C-2")]}
    with commits_fail(app):
        assert_unavailable(await tenant.writer.post("/v1/events/batch", json=batch))
    assert await events_of(tenant, "C-1") == []
    assert await events_of(tenant, "C-2") == []


async def test_a_void_whose_commit_fails_is_503_and_the_event_stays_in_force(
    app: FastAPI, tenant: Tenant
) -> None:
    posted = referral("C-1")
    assert (await tenant.writer.post("/v1/events", json=posted)).status_code == 201
    with commits_fail(app):
        response = await tenant.writer.post(
            f"/v1/events/{posted['id']}/void", json={"reason": "entered on the wrong case"}
        )
        assert_unavailable(response)
    (stored,) = await events_of(tenant, "C-1")
    assert stored["voided_at"] is None


async def test_a_ruleset_whose_commit_fails_is_503_and_the_old_one_stays_active(
    app: FastAPI, tenant: Tenant
) -> None:
    before = (await tenant.reader.get("/v1/rules")).json()
    with commits_fail(app):
        response = await tenant.admin.put(
            "/v1/rules", content=RULES_TOML, headers={"Content-Type": "application/toml"}
        )
        assert_unavailable(response)
    assert (await tenant.reader.get("/v1/rules")).json() == before


async def test_an_import_whose_commit_fails_is_503_and_leaves_no_trace(
    app: FastAPI, tenant: Tenant
) -> None:
    workbook = build_workbook(
        annex_a_sheet(3, [{"Child Unique ID": "C1", "Date of referral": "2026-08-14"}])
    )
    with commits_fail(app):
        response = await tenant.writer.post(
            "/v1/imports/annex-a",
            params={"extracted_on": "2026-11-20"},
            content=workbook,
            headers={"content-type": XLSX},
        )
        assert_unavailable(response)
    assert (await tenant.reader.get("/v1/imports")).json()["items"] == []
    assert await events_of(tenant, "C1") == []


async def test_a_webhook_whose_commit_fails_is_503_and_its_secret_never_shown(
    app: FastAPI, tenant: Tenant
) -> None:
    with commits_fail(app):
        response = await tenant.admin.post("/v1/webhooks", json={"url": PUBLIC_URL})
        assert_unavailable(response)
        assert "secret" not in response.text
    assert await webhooks(tenant) == []


async def test_a_webhook_change_whose_commit_fails_is_503_and_not_applied(
    app: FastAPI, tenant: Tenant, subscription: dict[str, Any]
) -> None:
    url = f"/v1/webhooks/{subscription['id']}"
    with commits_fail(app):
        assert_unavailable(await tenant.admin.patch(url, json={"description": "changed"}))
        assert_unavailable(await tenant.admin.delete(url))
    (kept,) = await webhooks(tenant)
    assert kept["description"] == subscription["description"]


async def test_a_secret_rotation_whose_commit_fails_is_503_and_the_secret_unchanged(
    app: FastAPI, tenant: Tenant, subscription: dict[str, Any]
) -> None:
    url = f"/v1/webhooks/{subscription['id']}"
    with commits_fail(app):
        assert_unavailable(await tenant.admin.post(f"{url}/rotate-secret"))
    (kept,) = await webhooks(tenant)
    assert kept["previous_secret_expires_at"] is None


async def test_a_test_ping_whose_commit_fails_is_503_and_queues_nothing(
    app: FastAPI, tenant: Tenant, subscription: dict[str, Any]
) -> None:
    url = f"/v1/webhooks/{subscription['id']}"
    with commits_fail(app):
        assert_unavailable(await tenant.admin.post(f"{url}/test"))
    assert (await tenant.admin.get(f"{url}/deliveries")).json()["items"] == []
