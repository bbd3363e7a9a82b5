"""An empty database of a test's own, for commands that must meet a database as a new
installation does: a SQLite file, or a new PostgreSQL database beside the test one."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from service.store.db import make_engine


def on_postgresql() -> bool:
    return bool(os.environ.get("CASECLOCK_TEST_DATABASE_URL"))


@contextmanager
def empty_database(directory: Path) -> Iterator[str]:
    """The URL of an empty database, dropped afterwards."""
    configured = os.environ.get("CASECLOCK_TEST_DATABASE_URL")
    if not configured:
        yield f"sqlite+aiosqlite:///{directory / 'scratch.db'}"
        return
    url = make_url(configured)
    name = f"{url.database}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_administer(configured, f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_administer(configured, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _administer(url: str, statement: str) -> None:
    """Run a statement that cannot run inside a transaction (CREATE and DROP DATABASE)."""
    engine = make_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()
