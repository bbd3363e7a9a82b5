"""The yardsticks: a bare FastAPI endpoint that inserts one row, with asyncpg (`app`) or with
aiosqlite into SQLite (`sqlite_app`)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
import asyncpg
from fastapi import FastAPI, Request


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["BENCH_BASELINE_DSN"], max_size=10)
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/v1/events", status_code=201)
async def insert(request: Request, body: dict[str, Any]) -> dict[str, str]:
    async with request.app.state.pool.acquire() as connection:
        await connection.execute(
            "INSERT INTO baseline_events (id, case_id, type, body) VALUES ($1, $2, $3, $4)",
            body["id"],
            body["case_id"],
            body["type"],
            str(body),
        )
    return {"id": body["id"], "status": "created"}


@asynccontextmanager
async def sqlite_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One aiosqlite connection, in the modes the service runs SQLite in (WAL, FULL sync)."""
    connection = await aiosqlite.connect(os.environ["BENCH_BASELINE_SQLITE"])
    await connection.execute("PRAGMA journal_mode=WAL")
    await connection.execute("PRAGMA synchronous=FULL")
    await connection.execute(
        "CREATE TABLE IF NOT EXISTS baseline_events (id TEXT PRIMARY KEY, case_id TEXT, "
        "type TEXT, body TEXT)"
    )
    await connection.commit()
    app.state.connection = connection
    yield
    await connection.close()


# The SQLite yardstick: the same endpoint, one row inserted and committed per request.
sqlite_app = FastAPI(lifespan=sqlite_lifespan)


@sqlite_app.get("/healthz")
async def sqlite_healthz() -> dict[str, str]:
    return {"status": "ok"}


@sqlite_app.post("/v1/events", status_code=201)
async def sqlite_insert(request: Request, body: dict[str, Any]) -> dict[str, str]:
    connection = request.app.state.connection
    await connection.execute(
        "INSERT INTO baseline_events (id, case_id, type, body) VALUES (?, ?, ?, ?)",
        (body["id"], body["case_id"], body["type"], str(body)),
    )
    await connection.commit()
    return {"id": body["id"], "status": "created"}
