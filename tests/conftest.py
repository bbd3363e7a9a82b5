"""Shared fixtures: a real database (SQLite file, or PostgreSQL from CASECLOCK_TEST_DATABASE_URL),
migrated once, and a fresh organisation per test so tests never see each other's data."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import settings

from service.jobs.background import run_next_jobs
from service.main import create_app
from service.settings import Settings
from service.store.db import transaction
from service.store.orgs import create_api_key, create_org

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# CI (HYPOTHESIS_PROFILE=ci, set by .ci/run) tries the same generated examples on every run, so
# a landing is judged on what was tested; a run by hand draws new ones and keeps any failure.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@dataclass
class FixedClock:
    """A clock tests set by hand; the app reads it through its clock dependency."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 20, 12, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    configured = os.environ.get("CASECLOCK_TEST_DATABASE_URL")
    if configured:
        return configured
    path: Path = tmp_path_factory.mktemp("db") / "caseclock.db"
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture(scope="session")
async def app(database_url: str, clock: FixedClock) -> AsyncIterator[FastAPI]:
    """The real application with its real lifespan; PostgreSQL is migrated here first."""
    settings = Settings(database_url=database_url, run_scheduler=False, log_format="console")
    if not settings.is_sqlite:
        from service.store.db import make_engine
        from service.store.migrations import upgrade_to_head

        engine = make_engine(database_url)
        await upgrade_to_head(engine)
        await engine.dispose()
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


async def run_jobs(app: FastAPI) -> None:
    """Run the background jobs queued so far (imports, rules activations) to their end, as
    the scheduler would (the tests' app runs none)."""
    await run_next_jobs(
        app.state.settings.database_url,
        app.state.session_factory,
        app.state.clock,
        threading.Event(),
    )


@dataclass
class Tenant:
    """An organisation of a test's own, with a client per kind of key."""

    org_id: str
    admin: httpx.AsyncClient
    writer: httpx.AsyncClient
    reader: httpx.AsyncClient
    anonymous: httpx.AsyncClient
    app: FastAPI

    async def run_jobs(self) -> None:
        await run_jobs(self.app)

    async def queue_annex_a(self, data: bytes) -> httpx.Response:
        """An Annex A workbook posted for import: its job queued (202), not yet run."""
        response = await self.writer.post(
            "/v1/imports/annex-a",
            params={"extracted_on": "2026-11-20"},
            content=data,
            headers={"content-type": XLSX},
        )
        assert response.status_code == 202, response.text
        return response

    async def job(self, response: httpx.Response) -> dict[str, Any]:
        """The job a 202 answer points to, as polled now."""
        body: dict[str, Any] = (await self.reader.get(response.headers["location"])).json()
        return body

    async def import_report(self, response: httpx.Response) -> dict[str, Any]:
        """The report of an import just posted (202), once its job has run."""
        assert response.status_code == 202, response.text
        await self.run_jobs()
        polled = await self.reader.get(response.headers["location"])
        body: dict[str, Any] = polled.json()
        assert body["state"] == "done", body
        report: dict[str, Any] = body["report"]
        return report

    async def activate(self, response: httpx.Response) -> dict[str, Any]:
        """A ruleset just put (202), once its open cases are re-derived."""
        assert response.status_code == 202, response.text
        await self.run_jobs()
        polled = await self.reader.get(response.headers["location"])
        activation: dict[str, Any] = polled.json()
        assert activation["state"] == "done", activation
        return {**response.json(), "activation": activation}


def _client(app: FastAPI, key: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://caseclock.test", headers=headers
    )


async def make_tenant(app: FastAPI, ruleset: str = "england-children") -> Tenant:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    async with transaction(app.state.session_factory) as session:
        org = await create_org(session, name=f"org-{uuid.uuid4().hex}", ruleset_id=ruleset, now=now)
        keys = {}
        for scope in ("admin", "events:write", "read"):
            _, keys[scope] = await create_api_key(
                session, org_id=org.id, scopes=frozenset({scope}), name=scope, now=now
            )
    return Tenant(
        org_id=org.id,
        admin=_client(app, keys["admin"]),
        writer=_client(app, keys["events:write"]),
        reader=_client(app, keys["read"]),
        anonymous=_client(app, None),
        app=app,
    )


@pytest.fixture
async def tenant(app: FastAPI, clock: FixedClock) -> AsyncIterator[Tenant]:
    clock.now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    tenant = await make_tenant(app)
    yield tenant
    for client in (tenant.admin, tenant.writer, tenant.reader, tenant.anonymous):
        await client.aclose()
