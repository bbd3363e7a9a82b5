"""When a group of single events fails to commit: an event the database refuses fails only its
own request, found by halving the group rather than by writing every event alone; a fault of
the database's own fails the whole group at once, since parts of it would fail the same way."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import Tenant
from fastapi import FastAPI
from scratch_database import on_postgresql
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError

from service.domain.events import Event
from service.store.db import transaction
from service.store.group_commit import GroupCommitter
from service.store.ingest import Outcome

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
GROUP = 64
POISON = f"E-poison-{uuid.uuid4().hex[:8]}"


def referral(event_id: str, case_id: str) -> Event:
    return Event(event_id, "referral_received", case_id, datetime(2026, 11, 16, 10, tzinfo=UTC))


@asynccontextmanager
async def poisoned(app: FastAPI) -> AsyncIterator[None]:
    """A trigger that refuses to store one event id, as a database refuses a bad row."""
    factory = app.state.session_factory
    if app.state.engine.dialect.name == "postgresql":
        create = [
            "DROP TRIGGER IF EXISTS refuse_poison ON events",
            f"""CREATE OR REPLACE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN
                IF NEW.id = '{POISON}' THEN
                    RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation';
                END IF; RETURN NEW; END $$ LANGUAGE plpgsql""",
            """CREATE TRIGGER refuse_poison BEFORE INSERT ON events
               FOR EACH ROW EXECUTE FUNCTION refuse_poison()""",
        ]
        drop = ["DROP TRIGGER refuse_poison ON events", "DROP FUNCTION refuse_poison()"]
    else:
        create = [
            "DROP TRIGGER IF EXISTS refuse_poison",
            f"""CREATE TRIGGER refuse_poison BEFORE INSERT ON events WHEN NEW.id = '{POISON}'
                BEGIN SELECT RAISE(ABORT, 'refused'); END""",
        ]
        drop = ["DROP TRIGGER refuse_poison"]
    async with transaction(factory) as session:
        for statement in create:
            await session.execute(text(statement))
    try:
        yield
    finally:
        async with transaction(factory) as session:
            for statement in drop:
                await session.execute(text(statement))


@contextmanager
def counting_transactions(app: FastAPI) -> Iterator[list[int]]:
    begun = [0]

    def begin(_connection: Any) -> None:
        begun[0] += 1

    engine = app.state.engine.sync_engine
    event.listen(engine, "begin", begin)
    try:
        yield begun
    finally:
        event.remove(engine, "begin", begin)


async def ingest_together(
    committer: GroupCommitter, org_id: str, events: list[Event]
) -> list[Outcome | BaseException]:
    """Every event waiting at once, so they form one group."""
    return await asyncio.gather(
        *(committer.ingest(org_id, e, NOW) for e in events), return_exceptions=True
    )


@pytest.fixture
def committer(app: FastAPI) -> GroupCommitter:
    return GroupCommitter(app.state.session_factory)


async def test_an_event_the_database_refuses_fails_alone_and_the_rest_are_stored(
    app: FastAPI, tenant: Tenant, committer: GroupCommitter
) -> None:
    events = [referral(f"E-{n}", f"C-{n}") for n in range(GROUP - 1)]
    events.insert(GROUP // 3, referral(POISON, "C-poison"))
    async with poisoned(app):
        results = await ingest_together(committer, tenant.org_id, events)
    failed = [e.id for e, r in zip(events, results, strict=True) if isinstance(r, BaseException)]
    assert failed == [POISON]
    assert isinstance(results[GROUP // 3], IntegrityError)
    stored = (await tenant.reader.get("/v1/events", params={"limit": 1000})).json()["items"]
    assert {e["id"] for e in stored} == {e.id for e in events} - {POISON}


async def test_finding_the_refused_event_takes_about_two_log2_n_transactions_not_n(
    app: FastAPI, tenant: Tenant, committer: GroupCommitter
) -> None:
    events = [referral(f"E-{n}", f"C-{n}") for n in range(GROUP - 1)] + [
        referral(POISON, "C-poison")
    ]
    async with poisoned(app):
        with counting_transactions(app) as begun:
            await ingest_together(committer, tenant.org_id, events)
    assert begun[0] <= 1 + 2 * 6  # log2(64) = 6 halvings, two transactions each


async def test_a_fault_of_the_database_fails_the_whole_group_in_one_transaction(
    app: FastAPI, tenant: Tenant, committer: GroupCommitter
) -> None:
    def lost(_connection: Any) -> None:
        raise OperationalError("COMMIT", None, ConnectionError("the connection was lost"))

    engine = app.state.engine.sync_engine
    events = [referral(f"E-{n}", f"C-{n}") for n in range(GROUP)]
    event.listen(engine, "commit", lost)
    try:
        with counting_transactions(app) as begun:
            results = await ingest_together(committer, tenant.org_id, events)
    finally:
        event.remove(engine, "commit", lost)
    assert all(isinstance(r, OperationalError) for r in results)
    assert begun[0] == 1


@pytest.mark.skipif(not on_postgresql(), reason="a PostgreSQL backend is terminated")
async def test_a_group_whose_connection_is_lost_is_written_again_on_a_new_one(
    app: FastAPI, tenant: Tenant, committer: GroupCommitter
) -> None:
    engine = app.state.engine.sync_engine

    def lose(connection: Any) -> None:
        event.remove(engine, "begin", lose)
        connection.exec_driver_sql("SELECT pg_terminate_backend(pg_backend_pid())")

    events = [referral(f"E-{n}", f"C-{n}") for n in range(GROUP)]
    with counting_transactions(app) as begun:
        event.listen(engine, "begin", lose)
        results = await ingest_together(committer, tenant.org_id, events)
    assert [r.status for r in results if isinstance(r, Outcome)] == ["created"] * GROUP
    assert begun[0] == 2  # the lost one, then the whole group again on a new connection
