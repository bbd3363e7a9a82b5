"""Fifty writers at once, single events and batches mixed, on either database: every request
is answered 2xx (no "database is locked", no error) and every event is stored once."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from conftest import Tenant

WRITERS = 50
EACH = 4


def referral(case_id: str) -> dict[str, Any]:
    return {
        "id": f"E-{uuid.uuid4().hex[:10]}",
        "type": "referral_received",
        "case_id": case_id,
        "occurred_at": "2026-11-16T10:00:00Z",
    }


async def test_fifty_concurrent_writers_are_all_answered_and_all_stored(tenant: Tenant) -> None:
    posted: list[str] = []

    async def writer(n: int) -> list[int]:
        statuses = []
        for i in range(EACH):
            if i % 2:
                events = [referral(f"C-{n}-{i}-{k}") for k in range(5)]
                response = await tenant.writer.post("/v1/events/batch", json={"events": events})
            else:
                events = [referral(f"C-{n}-{i}")]
                response = await tenant.writer.post("/v1/events", json=events[0])
            posted.extend(e["id"] for e in events)
            statuses.append(response.status_code)
        return statuses

    answered = await asyncio.gather(*(writer(n) for n in range(WRITERS)))
    assert {status for statuses in answered for status in statuses} <= {200, 201}
    stored: list[str] = []
    cursor = None
    while True:
        params = {"limit": 1000} | ({"cursor": cursor} if cursor else {})
        page = (await tenant.reader.get("/v1/events", params=params)).json()
        stored.extend(e["id"] for e in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(stored) == sorted(posted)
