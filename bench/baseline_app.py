"""The yardstick: a bare FastAPI endpoint that inserts one row with asyncpg."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

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
