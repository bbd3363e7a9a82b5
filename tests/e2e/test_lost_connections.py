"""PostgreSQL connections terminated under load (`pg_terminate_backend`, as a failover or an
administrator does): no request is answered 500, every acknowledged event is stored, and the
service is ready again within seconds, its pool recovering by itself. PostgreSQL only.

Bounded: the load runs for a few seconds and every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from scratch_database import empty_database, on_postgresql
from serving import free_port, start_serving
from sqlalchemy import text
from test_cli import environment, key_in

from service.store.db import make_engine

pytestmark = pytest.mark.skipif(not on_postgresql(), reason="terminates PostgreSQL backends")

WRITERS = 8
TERMINATIONS = 4
READY_WITHIN_SECONDS = 10
COMMAND = [sys.executable, "-m", "service.cli"]


@dataclass
class Service:
    database_url: str
    base_url: str
    key: str
    process: subprocess.Popen[bytes]


@dataclass
class Load:
    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: set[str] = field(default_factory=set)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with empty_database(tmp_path) as url:
        env = environment(tmp_path / "unused.db") | {"CASECLOCK_DATABASE_URL": url}
        for command in (["migrate"], ["org", "create", "kent"]):
            done = subprocess.run(  # noqa: S603 - our own command, with fixed arguments
                [*COMMAND, *command], env=env, capture_output=True, text=True, check=True
            )
        port = free_port()
        process = start_serving(env, tmp_path, port)
        try:
            yield Service(url, f"http://127.0.0.1:{port}", key_in(done.stdout), process)
        finally:
            process.terminate()
            process.wait(timeout=30)


async def terminate_backends(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
    finally:
        await engine.dispose()


async def load_while_terminating(service: Service) -> Load:
    load = Load()
    stop = asyncio.Event()

    async def writer(n: int) -> None:
        async with httpx.AsyncClient(
            base_url=service.base_url,
            headers={"Authorization": f"Bearer {service.key}"},
            timeout=10,
        ) as client:
            for i in range(100_000):
                if stop.is_set():
                    return
                event_id = f"E-{n}-{i}"
                response = await client.post(
                    "/v1/events",
                    json={
                        "id": event_id,
                        "type": "referral_received",
                        "case_id": f"C-{n}-{i % 5}",
                        "occurred_at": "2026-11-16T10:00:00Z",
                    },
                )
                load.statuses[response.status_code] += 1
                if response.status_code == 201:
                    load.acknowledged.add(event_id)

    async def terminator() -> None:
        for _ in range(TERMINATIONS):
            await asyncio.sleep(0.5)
            await terminate_backends(service.database_url)
        await asyncio.sleep(0.5)
        stop.set()

    await asyncio.gather(terminator(), *(writer(n) for n in range(WRITERS)))
    return load


async def stored_ids(service: Service) -> set[str]:
    engine = make_engine(service.database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT id FROM events"))
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


async def test_terminated_connections_cost_no_500_and_no_acknowledged_event(
    service: Service,
) -> None:
    load = await load_while_terminating(service)
    assert set(load.statuses) <= {201, 503}, load.statuses
    assert load.statuses[201] > 0
    assert load.acknowledged <= await stored_ids(service)


async def test_the_service_is_ready_again_within_seconds_of_the_last_termination(
    service: Service,
) -> None:
    await load_while_terminating(service)
    deadline = time.monotonic() + READY_WITHIN_SECONDS
    async with httpx.AsyncClient(base_url=service.base_url, timeout=2) as client:
        while (await client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "not ready again in time"
            await asyncio.sleep(0.2)
        response = await client.get("/v1/rules", headers={"Authorization": f"Bearer {service.key}"})
    assert response.status_code == 200
