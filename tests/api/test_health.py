"""Liveness and readiness probes."""

from __future__ import annotations

import ast
from pathlib import Path

import httpx
from conftest import FixedClock, Tenant

from service.main import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


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


class Failing:
    """A part of the process that says what is wrong with it."""

    def readiness(self) -> str:
        return "stalled: for the test"


async def readyz_with_a_failing_part(database_url: str, clock: FixedClock) -> httpx.Response:
    settings = Settings(database_url=database_url, run_scheduler=False, log_format="console")
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        application.state.readiness.add("sweeper", Failing())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://caseclock.test"
        ) as client:
            return await client.get("/readyz")


async def test_readyz_reports_a_part_of_the_process_that_is_not_ready(
    database_url: str, clock: FixedClock
) -> None:
    response = await readyz_with_a_failing_part(database_url, clock)
    assert response.status_code == 503
    assert response.json()["checks"]["sweeper"] == "stalled: for the test"


async def test_not_ready_is_a_problem_whose_status_is_the_number_503(
    database_url: str, clock: FixedClock
) -> None:
    response = await readyz_with_a_failing_part(database_url, clock)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 503


def test_no_router_imports_the_jobs() -> None:
    """Readiness reaches the routers through service/readiness.py, not from the jobs."""
    imported = {
        (path.name, name)
        for path in (ROOT / "service" / "api").glob("*.py")
        for name in imported_modules(path)
        if name == "service.jobs" or name.startswith("service.jobs.")
    }
    assert imported == set()


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    names = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names
