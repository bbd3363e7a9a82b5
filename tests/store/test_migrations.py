"""The Alembic migrations build exactly the schema the models describe, and run both ways."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi import FastAPI
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from service.store.db import make_engine
from service.store.migrations import alembic_config, current_revision, head_revision
from service.store.tables import metadata, obligations, orgs

TABLES = set(metadata.tables)


def differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def alembic(connection: Connection, verb: str, revision: str) -> None:
    getattr(command, verb)(alembic_config(connection), revision)


@pytest.fixture
async def throwaway(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An empty database of the test's own: a SQLite file, or a fresh PostgreSQL schema."""
    configured = os.environ.get("CASECLOCK_TEST_DATABASE_URL")
    if not configured:
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'throwaway.db'}")
        yield engine
        await engine.dispose()
        return
    schema = f"migrations_{uuid.uuid4().hex[:12]}"
    admin = make_engine(configured)
    async with admin.begin() as connection:
        await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(configured, connect_args={"server_settings": {"search_path": schema}})
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as connection:
            await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()


async def run(engine: AsyncEngine, verb: str, revision: str) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(alembic, verb, revision)


async def test_the_test_database_is_migrated_to_head(app: FastAPI) -> None:
    assert await current_revision(app.state.engine) == head_revision()


async def test_the_migrated_test_database_matches_the_models_exactly(app: FastAPI) -> None:
    engine: AsyncEngine = app.state.engine
    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_upgrading_an_empty_database_creates_every_table(throwaway: AsyncEngine) -> None:
    await run(throwaway, "upgrade", "head")
    async with throwaway.connect() as connection:
        assert await connection.run_sync(table_names) == TABLES


async def test_downgrading_to_base_removes_every_table(throwaway: AsyncEngine) -> None:
    await run(throwaway, "upgrade", "head")
    await run(throwaway, "downgrade", "base")
    async with throwaway.connect() as connection:
        assert await connection.run_sync(table_names) == set()
    assert await current_revision(throwaway) is None


async def test_upgrading_again_after_a_downgrade_matches_the_models(
    throwaway: AsyncEngine,
) -> None:
    await run(throwaway, "upgrade", "head")
    await run(throwaway, "downgrade", "base")
    await run(throwaway, "upgrade", "head")
    assert await current_revision(throwaway) == head_revision()
    async with throwaway.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_the_comparison_sees_a_missing_schema(throwaway: AsyncEngine) -> None:
    async with throwaway.connect() as connection:
        found = await connection.run_sync(differences)
    added = {diff[1].name for diff in found if diff[0] == "add_table"}
    assert added == TABLES


def _obligation(
    org_id: str,
    id_: str,
    team_id: str | None,
    met_at: datetime | None,
    cancelled_at: datetime | None = None,
) -> Any:
    due = datetime(2026, 11, 3, 23, 59, 59, tzinfo=UTC)
    return {
        "org_id": org_id,
        "id": id_,
        "case_id": "C-1",
        "rule_id": "referral-decision",
        "rule_name": "Referral decision",
        "sequence": 1,
        "opened_at": datetime(2026, 11, 2, tzinfo=UTC),
        "due_at": due,
        "warn_at": None,
        "escalate_at": [],
        "at_risk_periods": [],
        "met_at": met_at,
        "cancelled_at": cancelled_at,
        "closed_at": met_at or cancelled_at,
        "opened_by_event": "E-1",
        "met_by_event": "E-2" if met_at else None,
        "cancelled_by_event": "E-3" if cancelled_at else None,
        "worker_id": None,
        "team_id": team_id,
        "digest": id_,
        "next_check_at": None,
        "first_escalation_at": None,
    }


def _store_obligations(connection: Connection) -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    connection.execute(
        orgs.insert(),
        [
            {
                "id": "org_a",
                "name": "A",
                "ruleset_id": "england-children",
                "ruleset_format": "toml",
                "created_at": now,
            }
        ],
    )
    connection.execute(
        obligations.insert(),
        [
            # Met at 00:30 London time on 4 November, late: that day in London.
            _obligation("org_a", "ob-1", "T-1", datetime(2026, 11, 4, 0, 30, tzinfo=UTC)),
            _obligation("org_a", "ob-2", None, datetime(2026, 11, 3, 9, tzinfo=UTC)),
            _obligation("org_a", "ob-3", "T-1", None),
            # Cancelled on 10 November, a week after it fell due: missed, so late.
            _obligation("org_a", "ob-4", "T-1", None, datetime(2026, 11, 10, 9, tzinfo=UTC)),
            # Cancelled before it fell due: neutral.
            _obligation("org_a", "ob-5", "T-1", None, datetime(2026, 11, 3, 9, tzinfo=UTC)),
        ],
    )


def _completions(connection: Connection) -> set[tuple[Any, ...]]:
    rows = connection.execute(
        text("SELECT team_id, day, rule_id, completed, on_time FROM daily_completions")
    )
    return {(r.team_id, str(r.day), r.rule_id, r.completed, r.on_time) for r in rows}


async def test_the_completions_rollup_counts_obligations_stored_before_it(
    throwaway: AsyncEngine,
) -> None:
    await run(throwaway, "upgrade", "0004_imports")
    async with throwaway.begin() as connection:
        await connection.run_sync(_store_obligations)
    await run(throwaway, "upgrade", "head")
    async with throwaway.connect() as connection:
        assert await connection.run_sync(_completions) == {
            ("", "2026-11-03", "referral-decision", 1, 1),
            ("", "2026-11-04", "referral-decision", 1, 0),
            ("T-1", "2026-11-04", "referral-decision", 1, 0),
            ("", "2026-11-10", "referral-decision", 1, 0),
            ("T-1", "2026-11-10", "referral-decision", 1, 0),
        }
