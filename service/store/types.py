"""Column types that keep every stored instant aware and in UTC, on SQLite as on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """SQLite drops offsets, so we store naive UTC there and put the zone back on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("refusing to store a naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {value!r}")
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def driver_instant(value: datetime | None) -> datetime | None:
    """An instant as `UTCDateTime` hands it to PostgreSQL's driver, for bulk inserts that
    skip SQLAlchemy's processing (store/db.py, BulkInsert)."""
    if value is None:
        return None
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None:
        raise ValueError("refusing to store a naive datetime")
    return value.astimezone(UTC)


def driver_instant_sqlite(value: datetime | None) -> str | None:
    """An instant as `UTCDateTime` and SQLAlchemy's SQLite DATETIME store it: naive UTC text
    with microseconds, which is what makes stored instants compare in order as text."""
    if value is None:
        return None
    return _sqlite_text(value)


@lru_cache(maxsize=16384)
def _sqlite_text(value: datetime) -> str:
    """Kept for the instants a bulk insert repeats: most of a case's obligations fall due
    at the end of a day some other one does, and writing one out costs more than finding it."""
    if value.tzinfo is None:
        raise ValueError("refusing to store a naive datetime")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
