"""Organisations never see each other's cases, events or obligations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import Tenant, make_tenant
from fastapi import FastAPI


def referral(event_id: str, case_id: str, worker_id: str = "W-1") -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "referral_received",
        "case_id": case_id,
        "occurred_at": "2026-11-02T10:15:00Z",
        "worker_id": worker_id,
        "team_id": "T-1",
    }


@pytest.fixture
async def other(app: FastAPI, tenant: Tenant) -> AsyncIterator[Tenant]:
    """A second organisation beside `tenant`, holding a case of its own."""
    other = await make_tenant(app)
    response = await other.writer.post("/v1/events", json=referral("theirs", "C-THEIRS", "W-9"))
    assert response.status_code == 201
    yield other
    for client in (other.admin, other.writer, other.reader, other.anonymous):
        await client.aclose()


async def test_an_obligation_of_another_organisation_is_not_found(
    tenant: Tenant, other: Tenant
) -> None:
    (theirs, *_) = (await other.reader.get("/v1/obligations")).json()["items"]
    response = await tenant.reader.get(f"/v1/obligations/{theirs['id']}")
    assert response.status_code == 404


async def test_obligation_lists_hold_only_the_callers_organisation(
    tenant: Tenant, other: Tenant
) -> None:
    await tenant.writer.post("/v1/events", json=referral("mine", "C-MINE"))
    items = (await tenant.reader.get("/v1/obligations")).json()["items"]
    assert {o["case_id"] for o in items} == {"C-MINE"}


async def test_filtering_by_another_organisations_case_finds_nothing(
    tenant: Tenant, other: Tenant
) -> None:
    params = {"case_id": "C-THEIRS"}
    assert (await tenant.reader.get("/v1/obligations", params=params)).json()["items"] == []


async def test_filtering_by_another_organisations_worker_finds_nothing(
    tenant: Tenant, other: Tenant
) -> None:
    params = {"worker_id": "W-9"}
    assert (await tenant.reader.get("/v1/obligations", params=params)).json()["items"] == []


async def test_the_event_log_holds_only_the_callers_events(tenant: Tenant, other: Tenant) -> None:
    await tenant.writer.post("/v1/events", json=referral("mine", "C-MINE"))
    items = (await tenant.reader.get("/v1/events")).json()["items"]
    assert [e["id"] for e in items] == ["mine"]


async def test_another_organisations_case_is_404(tenant: Tenant, other: Tenant) -> None:
    response = await tenant.reader.get("/v1/cases/C-THEIRS")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_another_organisations_event_cannot_be_voided(tenant: Tenant, other: Tenant) -> None:
    response = await tenant.writer.post("/v1/events/theirs/void", json={"reason": "x"})
    assert response.status_code == 404
    theirs = (await other.reader.get("/v1/events")).json()["items"]
    assert theirs[0]["voided_at"] is None


async def test_the_same_event_id_may_exist_in_two_organisations(
    tenant: Tenant, other: Tenant
) -> None:
    response = await tenant.writer.post("/v1/events", json=referral("theirs", "C-MINE"))
    assert response.status_code == 201
    assert response.json()["status"] == "created"


async def test_the_same_case_id_in_two_organisations_are_separate_cases(
    tenant: Tenant, other: Tenant
) -> None:
    await tenant.writer.post("/v1/events", json=referral("mine", "C-THEIRS", "W-1"))
    mine = (await tenant.reader.get("/v1/cases/C-THEIRS")).json()
    theirs = (await other.reader.get("/v1/cases/C-THEIRS")).json()
    assert [e["id"] for e in mine["events"]] == ["mine"]
    assert [e["id"] for e in theirs["events"]] == ["theirs"]
    assert (mine["worker_id"], theirs["worker_id"]) == ("W-1", "W-9")


async def test_voiding_in_one_organisation_leaves_the_same_id_in_another(
    tenant: Tenant, other: Tenant
) -> None:
    await tenant.writer.post("/v1/events", json=referral("theirs", "C-MINE"))
    await tenant.writer.post("/v1/events/theirs/void", json={"reason": "mistake"})
    assert (await tenant.reader.get("/v1/obligations")).json()["items"] == []
    assert len((await other.reader.get("/v1/obligations")).json()["items"]) == 3


async def test_a_rules_change_in_one_organisation_leaves_the_other(
    tenant: Tenant, other: Tenant
) -> None:
    await tenant.admin.put(
        "/v1/rules",
        content='{"builtin": "england-adults"}',
        headers={"Content-Type": "application/json"},
    )
    assert (await other.reader.get("/v1/rules")).json()["id"] == "england-children"
    assert len((await other.reader.get("/v1/obligations")).json()["items"]) == 3
