"""No acknowledged event is lost when `caseclock serve` on SQLite is killed (SIGKILL) in the
middle of a load: every event answered 201 is in the database file afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
from test_cli import caseclock, environment, free_port, key_in

WRITERS = 16
LOAD_SECONDS = 30
ACKNOWLEDGED_BEFORE_KILL = 100


def start(database: Path, port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(  # noqa: S603 - our own command, with fixed arguments
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=environment(database),
        cwd=database.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        assert server.poll() is None, "caseclock serve exited"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "caseclock serve did not become ready"
        time.sleep(0.2)


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
    server = start(database, port)
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
