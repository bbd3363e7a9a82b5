"""Group commit of single events: a lone event is written at once, events that wait together
share one transaction, an event that cannot be written fails only its own request, and a
writer stopped at shutdown fails the requests still waiting rather than leaving them hanging.

How a failed group finds the event that failed it is tested in test_group_commit_failures.py;
these tests hold whatever the way."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import Tenant
from fastapi import FastAPI
from sqlalchemy import event

from service.domain.events import Event
from service.store.group_commit import GroupCommitter

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def referral(event_id: str, **data: Any) -> Event:
    return Event(
        event_id,
        "referral_received",
        f"C-{event_id}",
        datetime(2026, 11, 16, 10, tzinfo=UTC),
        data=data,
    )


@contextmanager
def counting(app: FastAPI, name: str) -> Iterator[list[int]]:
    """How many times the engine raises `name` ("begin", "commit") inside the block."""
    seen = [0]

    def count(_connection: Any) -> None:
        seen[0] += 1

    engine = app.state.engine.sync_engine
    event.listen(engine, name, count)
    try:
        yield seen
    finally:
        event.remove(engine, name, count)


@contextmanager
def on_begin(app: FastAPI) -> Iterator[asyncio.Event]:
    """Set once the engine begins a transaction inside the block."""
    began = asyncio.Event()

    def mark(_connection: Any) -> None:
        began.set()

    engine = app.state.engine.sync_engine
    event.listen(engine, "begin", mark)
    try:
        yield began
    finally:
        event.remove(engine, "begin", mark)


async def stored_ids(tenant: Tenant) -> set[str]:
    response = await tenant.reader.get("/v1/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {e["id"] for e in response.json()["items"]}


@pytest.fixture
def committer(app: FastAPI) -> GroupCommitter:
    return GroupCommitter(app.state.session_factory)


async def test_a_lone_event_is_committed_in_a_transaction_of_its_own_before_it_is_answered(
    app: FastAPI, tenant: Tenant, committer: GroupCommitter
) -> None:
    with counting(app, "begin") as begun, counting(app, "commit") as committed:
        outcome = await committer.ingest(tenant.org_id, referral("E-1"), NOW)

    assert (outcome.id, outcome.status) == ("E-1", "created")
    assert (begun[0], committed[0]) == (1, 1)
    assert await stored_ids(tenant) == {"E-1"}


async def test_events_waiting_together_share_one_transaction(
    app: FastAPI, tenant: Tenant, committer: GroupCommitter
) -> None:
    events = [referral(f"E-{n}") for n in range(20)]

    with counting(app, "begin") as begun, counting(app, "commit") as committed:
        outcomes = await asyncio.gather(*(committer.ingest(tenant.org_id, e, NOW) for e in events))

    assert [(o.id, o.status) for o in outcomes] == [(e.id, "created") for e in events]
    assert (begun[0], committed[0]) == (1, 1)
    assert await stored_ids(tenant) == {e.id for e in events}


async def test_events_arriving_while_a_group_is_written_form_the_next_group(
    app: FastAPI, tenant: Tenant, committer: GroupCommitter
) -> None:
    events = [referral(f"E-{n}") for n in range(10)]

    with counting(app, "commit") as committed, on_begin(app) as began:
        first = asyncio.create_task(committer.ingest(tenant.org_id, events[0], NOW))
        await began.wait()
        later = [committer.ingest(tenant.org_id, e, NOW) for e in events[1:]]
        outcomes = await asyncio.gather(first, *later)

    assert [(o.id, o.status) for o in outcomes] == [(e.id, "created") for e in events]
    assert committed[0] == 2
    assert await stored_ids(tenant) == {e.id for e in events}


async def test_an_event_that_cannot_be_written_fails_only_its_own_request(
    tenant: Tenant, committer: GroupCommitter
) -> None:
    events = [referral(f"E-{n}") for n in range(8)]
    # Data that cannot be stored as JSON: the group's transaction fails on this event alone.
    events.insert(3, referral("E-bad", note=object()))

    results = await asyncio.gather(
        *(committer.ingest(tenant.org_id, e, NOW) for e in events), return_exceptions=True
    )

    failed = [e.id for e, r in zip(events, results, strict=True) if isinstance(r, BaseException)]
    assert failed == ["E-bad"]
    assert await stored_ids(tenant) == {e.id for e in events} - {"E-bad"}


async def test_a_writer_stopped_at_shutdown_fails_every_waiting_request(
    app: FastAPI, tenant: Tenant, committer: GroupCommitter
) -> None:
    events = [referral(f"E-{n}") for n in range(5)]
    before = asyncio.all_tasks()
    with on_begin(app) as began:
        requests = [asyncio.create_task(committer.ingest(tenant.org_id, events[0], NOW))]
        await began.wait()
        requests += [
            asyncio.create_task(committer.ingest(tenant.org_id, e, NOW)) for e in events[1:]
        ]
        await asyncio.sleep(0)
    [writer] = asyncio.all_tasks() - before - set(requests) - {asyncio.current_task()}

    writer.cancel()  # as the event loop cancels what is left running when it stops
    _, still_waiting = await asyncio.wait(requests, timeout=30)

    assert still_waiting == set()
    for request in requests:
        with pytest.raises(RuntimeError, match="shutting down"):
            request.result()
