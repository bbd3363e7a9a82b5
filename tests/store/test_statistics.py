"""Statistics gathered where the service made them stale: the write path's tables that grew by
more than a tenth since PostgreSQL last measured them are analyzed, the others left alone
(docs/operations.md, Statistics)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from scratch_database import empty_database, on_postgresql
from sqlalchemy import text

from service.domain.events import Event
from service.store.db import SessionFactory, make_engine, make_session_factory, transaction
from service.store.ingest import ingest_events
from service.store.migrations import upgrade_to_head
from service.store.orgs import create_org, lock_ruleset
from service.store.statistics import analyze_grown

pytestmark = pytest.mark.skipif(not on_postgresql(), reason="PostgreSQL's statistics")

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with empty_database(tmp_path_factory.mktemp("statistics")) as found:
        yield found


@pytest.fixture
async def factory(url: str) -> AsyncIterator[SessionFactory]:
    engine = make_engine(url)
    await upgrade_to_head(engine)
    yield make_session_factory(engine)
    await engine.dispose()


async def write_cases(factory: SessionFactory, org_id: str, first: int, last: int) -> None:
    start = NOW - timedelta(days=100)
    batch = [
        Event(f"C{n}-{kind}", kind, f"C{n}", start + timedelta(days=day), "W-1", "T-1", data)
        for n in range(first, last)
        for kind, day, data in (
            ("referral_received", 0, {}),
            ("referral_decision_made", 1, {"outcome": "assessment"}),
            ("assessment_started", 3, {}),
        )
    ]
    async with transaction(factory) as session:
        await ingest_events(session, org_id, await lock_ruleset(session, org_id), batch, NOW)


async def new_org(factory: SessionFactory) -> str:
    async with transaction(factory) as session:
        return (await create_org(session, name="kent", ruleset_id="england-children", now=NOW)).id


async def analyzed(factory: SessionFactory) -> list[str]:
    async with transaction(factory) as session:
        return await analyze_grown(session)


async def has_statistics(factory: SessionFactory, table: str) -> bool:
    async with factory() as session:
        found = await session.execute(
            text("SELECT count(*) FROM pg_stats WHERE tablename = :table"), {"table": table}
        )
        return bool(found.scalar_one())


async def test_a_write_that_filled_empty_tables_analyzes_them(factory: SessionFactory) -> None:
    await write_cases(factory, await new_org(factory), 0, 300)
    assert {"cases", "events", "obligations"} <= set(await analyzed(factory))
    assert await has_statistics(factory, "events")


async def test_tables_that_grew_by_a_tenth_or_less_are_left_alone(factory: SessionFactory) -> None:
    org_id = await new_org(factory)
    await write_cases(factory, org_id, 0, 300)
    await analyzed(factory)
    await write_cases(factory, org_id, 300, 310)
    assert "events" not in await analyzed(factory)


async def test_tables_that_grew_by_more_than_a_tenth_are_analyzed_again(
    factory: SessionFactory,
) -> None:
    org_id = await new_org(factory)
    await write_cases(factory, org_id, 0, 300)
    await analyzed(factory)
    await write_cases(factory, org_id, 300, 400)
    assert "events" in await analyzed(factory)


async def test_empty_tables_are_not_analyzed(factory: SessionFactory) -> None:
    """An empty table has nothing to describe: left as it is, the planner keeps assuming
    it may grow."""
    assert await analyzed(factory) == []
