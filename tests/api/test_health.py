"""Liveness and readiness probes."""

from __future__ import annotations

from conftest import Tenant


async def test_healthz_says_the_process_is_up(tenant: Tenant) -> None:
    response = await tenant.anonymous.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_reports_the_database_reachable_and_the_schema_at_head(
    tenant: Tenant,
) -> None:
    response = await tenant.anonymous.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["schema"] == "ok"
