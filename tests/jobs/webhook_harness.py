"""What the job tests share: a real HTTP receiver on 127.0.0.1, an app that may deliver to it,
and a few queries.

The receiver is a real aiohttp server in the test's event loop; it answers scripted status
codes per path, then 200, and records every request as it arrived.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiohttp import web
from conftest import FixedClock, Tenant, make_tenant
from fastapi import FastAPI
from sqlalchemy import select, update
from standardwebhooks.webhooks import Webhook

from service.jobs.deliver import DeliveryConfig, DeliveryRun, WebhookSender, deliver_due
from service.jobs.sweep import SweepResult, sweep
from service.main import create_app
from service.settings import Settings
from service.store.db import transaction
from service.store.tables import alerts, deliveries, delivery_attempts

START = datetime(2026, 11, 20, 12, tzinfo=UTC)  # a Friday
SCHEDULE = "5s,5m,30m"
POLL_SECONDS = 0.05
AppAndClock = tuple[FastAPI, FixedClock]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def verifies_with(self, secret: str) -> bool:
        Webhook(secret).verify(self.body, self.headers)
        return True


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    delay: float = 0.0


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records what it receives."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.scripts: dict[str, list[Answer]] = {}
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def url(self, path: str = "/hooks") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, *answers: Answer | int) -> None:
        """Answer the next requests to `path` with these, then 200 again."""
        self.scripts.setdefault(path, []).extend(
            a if isinstance(a, Answer) else Answer(a) for a in answers
        )

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(Received(request.path, dict(request.headers), body))
        script = self.scripts.get(request.path)
        answer = script.pop(0) if script else Answer(200)
        if answer.delay:
            await asyncio.sleep(answer.delay)
        return web.Response(status=answer.status, headers=answer.headers, text=answer.body)


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    endpoint = Receiver()
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()


def settings_for(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "run_scheduler": False,
        "log_format": "console",
        "webhook_allow_private_networks": True,
        "webhook_retry_schedule": SCHEDULE,
        "webhook_timeout_seconds": 2,
        "webhook_disable_after": "1d",
        "alert_settle_seconds": 0,  # tests of the settle period ask for one
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_app(settings: Settings, clock: FixedClock) -> AsyncIterator[FastAPI]:
    """The real application with its lifespan (and its scheduler, if the settings say so)."""
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@dataclass
class Alerting:
    """An app that may deliver to 127.0.0.1, its clock, and the delivery client of a test."""

    app: FastAPI
    clock: FixedClock
    sender: WebhookSender

    @property
    def config(self) -> DeliveryConfig:
        return DeliveryConfig.from_settings(self.app.state.settings)

    async def sweep(self) -> SweepResult:
        return await sweep(self.app.state.session_factory, now=self.clock.now)

    async def deliver(self) -> DeliveryRun:
        return await deliver_due(
            self.app.state.session_factory,
            self.sender,
            config=self.config,
            clock=self.clock,
            budget_seconds=20,
        )

    async def settle(self) -> None:
        """Give up every pending delivery, so no test sends to another test's receiver."""
        async with transaction(self.app.state.session_factory) as session:
            await session.execute(
                update(deliveries)
                .where(deliveries.c.status == "pending")
                .values(status="failed", next_attempt_at=None)
            )

    async def tenant(self) -> Tenant:
        return await make_tenant(self.app)

    async def alerts(self, org_id: str) -> list[Any]:
        async with transaction(self.app.state.session_factory) as session:
            rows = await session.execute(
                select(alerts)
                .where(alerts.c.org_id == org_id)
                .order_by(alerts.c.created_at, alerts.c.id)
            )
            return list(rows.all())

    async def deliveries(self, org_id: str) -> list[Any]:
        async with transaction(self.app.state.session_factory) as session:
            rows = await session.execute(
                select(deliveries)
                .where(deliveries.c.org_id == org_id)
                .order_by(deliveries.c.created_at, deliveries.c.id)
            )
            return list(rows.all())

    async def attempts(self, delivery_id: str) -> list[Any]:
        async with transaction(self.app.state.session_factory) as session:
            rows = await session.execute(
                select(delivery_attempts)
                .where(delivery_attempts.c.delivery_id == delivery_id)
                .order_by(delivery_attempts.c.attempt)
            )
            return list(rows.all())


@asynccontextmanager
async def alerting_app(database_url: str) -> AsyncIterator[AppAndClock]:
    """An app for a module of tests, allowed to deliver to 127.0.0.1, with a clock of its own."""
    clock = FixedClock(START)
    async with running_app(settings_for(database_url), clock) as application:
        yield application, clock


@asynccontextmanager
async def alerting_for(app_and_clock: AppAndClock) -> AsyncIterator[Alerting]:
    """One test's view: the clock back at START, a delivery client, and no deliveries left
    pending afterwards (so no test sends to another test's receiver)."""
    application, clock = app_and_clock
    clock.now = START
    sender = WebhookSender(timeout_seconds=2, allow_private=True, concurrency=8)
    alerting = Alerting(application, clock, sender)
    try:
        yield alerting
    finally:
        await sender.aclose()
        await alerting.settle()


async def subscribe(tenant: Tenant, url: str, **filters: Any) -> dict[str, Any]:
    response = await tenant.admin.post("/v1/webhooks", json={"url": url, **filters})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def referral(
    case_id: str, occurred_at: str, *, team_id: str = "T-A", event_id: str | None = None
) -> dict[str, Any]:
    return {
        "id": event_id or f"ref-{case_id}-{uuid.uuid4().hex[:6]}",
        "type": "referral_received",
        "case_id": case_id,
        "occurred_at": occurred_at,
        "worker_id": "W-1",
        "team_id": team_id,
        "data": {},
    }


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 15) -> None:
    """Wait until `check` holds, polling; fail after `seconds`."""
    for _ in range(int(seconds / POLL_SECONDS)):
        if await check():
            return
        await asyncio.sleep(POLL_SECONDS)
    raise AssertionError(f"still not true after {seconds}s")


async def post(client: httpx.AsyncClient, event: dict[str, Any]) -> None:
    response = await client.post("/v1/events", json=event)
    assert response.status_code in (200, 201), response.text
