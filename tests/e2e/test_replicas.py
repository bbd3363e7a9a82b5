"""Three `caseclock serve` replicas on one PostgreSQL database deliver every alert of a caseload,
although one of them is killed (SIGKILL) while its deliveries are in flight, and no delivery
ever records two successes. PostgreSQL only: SQLite is single-process by design.

Bounded: every wait has a deadline and the whole test stops by itself within a few minutes;
every process it starts is stopped, and its database dropped, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiohttp import web

URL = os.environ.get("CASECLOCK_TEST_DATABASE_URL", "")
pytestmark = pytest.mark.skipif(
    not URL.startswith("postgresql"), reason="several replicas need PostgreSQL"
)

ROOT = Path(__file__).resolve().parents[2]
CASECLOCK = Path(sys.executable).parent / "caseclock"
REPLICAS = 3
CASES = 1000  # two overdue obligations each: referral-decision and first-contact
BATCH = 250
KILL_AFTER = 600  # messages received
RECEIVER_DELAY = 0.1  # seconds per response, so deliveries are in flight when the kill comes
TEST_SECONDS = 150
Replica = tuple[subprocess.Popen[bytes], str]


@dataclass
class Counting:
    """A receiver that counts messages by webhook-id and by alert."""

    by_id: Counter[str] = field(default_factory=Counter)
    by_alert: Counter[tuple[str, str, int]] = field(default_factory=Counter)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(RECEIVER_DELAY)
        self.by_id[request.headers["webhook-id"]] += 1
        obligation = body["data"]["obligation"]
        level = obligation["escalation_level"] if body["type"] == "obligation.escalated" else 0
        self.by_alert[(obligation["id"], body["type"], level)] += 1
        return web.Response(status=204)


@contextlib.asynccontextmanager
async def receiving(counting: Counting) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/alerts", counting.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/alerts"
    finally:
        await runner.cleanup()


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@contextlib.asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """A database of this test's own on the test server, dropped afterwards."""
    name = f"caseclock_e2e_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(_plain(URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        base = URL.rsplit("/", 1)[0]
        try:
            yield f"{base}/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "CASECLOCK_DATABASE_URL": database_url,
        "CASECLOCK_RUN_SCHEDULER": "true",
        "CASECLOCK_SWEEP_INTERVAL_SECONDS": "1",
        "CASECLOCK_DELIVERY_INTERVAL_SECONDS": "0.5",
        "CASECLOCK_WEBHOOK_TIMEOUT_SECONDS": "2",
        "CASECLOCK_WEBHOOK_RETRY_SCHEDULE": "1s,2s,2s,2s,2s",
        "CASECLOCK_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "true",
        "CASECLOCK_LOG_FORMAT": "json",
    }


def command(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own command, arguments from this test
        [str(CASECLOCK), *args], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout


@contextlib.contextmanager
def replicas(
    env: dict[str, str], logs: Path
) -> Iterator[list[tuple[subprocess.Popen[bytes], str]]]:
    """Start the replicas; stop every one still alive afterwards."""
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for n in range(REPLICAS):
            port = free_port()
            log = (logs / f"replica-{n}.log").open("wb")
            process = subprocess.Popen(  # noqa: S603 - our own command
                [str(CASECLOCK), "serve", "--port", str(port)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            started.append((process, f"http://127.0.0.1:{port}"))
        yield started
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.terminate()
        for process, _ in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


async def until_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=1) as client:
        for _ in range(300):
            if process.poll() is not None:
                raise AssertionError(f"replica at {base} exited with {process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError(f"replica at {base} did not become healthy")


def caseload(now: datetime) -> list[dict[str, Any]]:
    """Referrals four weeks old: each leaves a decision and a first contact overdue."""
    referred = (now - timedelta(days=28)).replace(microsecond=0)
    return [
        {
            "id": f"ref-{n:05d}",
            "type": "referral_received",
            "case_id": f"C-{n:05d}",
            "occurred_at": referred.isoformat().replace("+00:00", "Z"),
            "worker_id": f"W-{n % 40}",
            "team_id": f"T-{n % 5}",
        }
        for n in range(CASES)
    ]


async def database_state(database_url: str) -> dict[str, Any]:
    connection = await asyncpg.connect(_plain(database_url))
    try:
        alerts = await connection.fetch("SELECT obligation_id, type, level FROM alerts")
        statuses = Counter(
            dict(await connection.fetch("SELECT status, count(*) FROM deliveries GROUP BY status"))
        )
        twice = await connection.fetchval(
            "SELECT count(*) FROM (SELECT delivery_id FROM delivery_attempts"
            " WHERE outcome = 'succeeded' GROUP BY delivery_id HAVING count(*) > 1) AS t"
        )
        reclaimed = await connection.fetchval(
            "SELECT count(*) FROM deliveries d WHERE d.attempts >"
            " (SELECT count(*) FROM delivery_attempts a WHERE a.delivery_id = d.id)"
        )
        overdue = await connection.fetchval(
            "SELECT count(*) FROM obligations WHERE closed_at IS NULL AND due_at < now()"
        )
    finally:
        await connection.close()
    return {
        "alerts": {(r["obligation_id"], r["type"], r["level"]) for r in alerts},
        "statuses": statuses,
        "successes_twice": twice,
        "reclaimed": reclaimed,
        "overdue": overdue,
    }


async def test_three_replicas_deliver_every_alert_once_although_one_is_killed_mid_delivery(
    tmp_path: Path,
) -> None:
    counting = Counting()
    async with (
        asyncio.timeout(TEST_SECONDS),
        fresh_database() as database_url,
        receiving(counting) as receiver_url,
    ):
        env = environment(database_url)
        await asyncio.to_thread(command, env, "migrate")
        key = (await asyncio.to_thread(command, env, "org", "create", "e2e")).splitlines()[-1]
        with replicas(env, tmp_path) as running:
            for process, base in running:
                await until_healthy(base, process)
            headers = {"Authorization": f"Bearer {key}"}
            clients = [
                httpx.AsyncClient(base_url=b, headers=headers, timeout=60) for _, b in running
            ]
            try:
                created = await clients[0].post("/v1/webhooks", json={"url": receiver_url})
                assert created.status_code == 201, created.text
                events = caseload(datetime.now(UTC))
                batches = [events[i : i + BATCH] for i in range(0, len(events), BATCH)]
                results = await asyncio.gather(
                    *(
                        clients[n % REPLICAS].post("/v1/events/batch", json={"events": batch})
                        for n, batch in enumerate(batches)
                    )
                )
                assert all(r.status_code == 200 for r in results)
                for _ in range(int(60 / 0.02)):
                    if sum(counting.by_id.values()) >= KILL_AFTER:
                        break
                    await asyncio.sleep(0.02)
                victim, _ = running[1]
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait(timeout=10)
                state: dict[str, Any] = {}
                for _ in range(int(100 / 0.5)):
                    state = await database_state(database_url)
                    done = set(state["statuses"]) == {"succeeded"}
                    if done and set(counting.by_alert) >= state["alerts"]:
                        break
                    await asyncio.sleep(0.5)
            finally:
                for client in clients:
                    await client.aclose()
            assert all(p.poll() is None for p, _ in running if p is not victim)
    assert state["overdue"] == 2 * CASES
    assert set(counting.by_alert) == state["alerts"]
    assert len(state["alerts"]) >= 2 * CASES
    assert state["statuses"] == Counter({"succeeded": len(state["alerts"])})
    assert state["successes_twice"] == 0
    # The kill came mid-delivery: some deliveries were claimed by the dead replica, never
    # recorded, and sent again by another with the same webhook-id.
    assert state["reclaimed"] > 0
