"""No acknowledged event is lost when `caseclock serve` on SQLite is killed (SIGKILL) in the
middle of a load: every event answered 201 is in the database file afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx
from serving import free_port, start_serving
from test_cli import caseclock, environment, key_in

WRITERS = 16
LOAD_SECONDS = 30
ACKNOWLEDGED_BEFORE_KILL = 100


async def post_until_killed(base_url: str, key: str, server: subprocess.Popen[bytes]) -> set[str]:
    acknowledged: set[str] = set()

    async def writer(n: int) -> None:
        async with httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=5
        ) as client:
            for i in range(100_000):
                event_id = f"E-{n}-{i}"
                body = {
                    "id": event_id,
                    "type": "referral_received",
                    "case_id": f"C-{n}-{i % 7}",
                    "occurred_at": "2026-11-16T10:00:00Z",
                }
                try:
                    response = await client.post("/v1/events", json=body)
                except httpx.TransportError:
                    return  # the server is gone
                if response.status_code == 201:
                    acknowledged.add(event_id)

    async def killer() -> None:
        """Kill mid-load: once a first hundred events are in (bounded wait), with writes in
        flight."""
        for _ in range(int(LOAD_SECONDS * 20)):
            if len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL:
                break
            await asyncio.sleep(0.05)
        os.kill(server.pid, signal.SIGKILL)

    await asyncio.gather(killer(), *(writer(n) for n in range(WRITERS)))
    return acknowledged


async def test_every_event_acknowledged_before_a_kill_is_stored(tmp_path: Path) -> None:
    database = tmp_path / "caseclock.db"
    created = caseclock(database, "org", "create", "kent")
    assert created.code == 0, created.err
    port = free_port()
    server = start_serving(environment(database), database.parent, port)
    try:
        acknowledged = await post_until_killed(
            f"http://127.0.0.1:{port}", key_in(created.out), server
        )
    finally:
        server.kill()
        server.wait(timeout=10)
    assert len(acknowledged) >= ACKNOWLEDGED_BEFORE_KILL
    with sqlite3.connect(database) as connection:
        stored = {row[0] for row in connection.execute("SELECT id FROM events")}
    assert acknowledged <= stored
