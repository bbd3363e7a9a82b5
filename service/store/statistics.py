"""Planner statistics kept fresh where the service itself made them stale.

The write path and the single-case reads do not depend on statistics: their statements find a
case through its index whatever PostgreSQL knows (docs/operations.md, Statistics). The
organisation-wide reads (the dashboard, lists by filter) do, and a bulk write can leave the
statistics describing tables a fraction of their size. Autovacuum analyzes a table once a
tenth of it has changed, when it runs; it may be off, or behind a bulk load. So a write that
can grow the tables a lot (a batch of events, an import, a rules activation) ends by analyzing
those that grew by more than a tenth since PostgreSQL last measured them, and `caseclock
migrate` analyzes every table whose size changed.

SQLite plans well from its own rules until statistics exist, and then its `PRAGMA optimize`
decides what is worth analyzing again.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Float, Table, bindparam, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from service.store.db import dialect_of
from service.store.tables import (
    alerts,
    case_periods,
    cases,
    daily_completions,
    events,
    obligations,
    risk_periods,
)

GROWTH = 0.1
WRITE_PATH_TABLES = (
    alerts,
    case_periods,
    cases,
    daily_completions,
    events,
    obligations,
    risk_periods,
)

# A table's size now against `relpages`, its size when last measured (ANALYZE, VACUUM, or
# CREATE INDEX, which is 0 pages for a table created empty): no scan, no lag behind commits.
_GROWN = text(
    "SELECT c.relname FROM pg_class c "
    "WHERE c.oid = ANY(CAST(:tables AS regclass[])) "
    "AND pg_relation_size(c.oid) > (1 + :growth) * c.relpages * current_setting('block_size')::int "
    "ORDER BY c.relname"
).bindparams(
    bindparam("tables", type_=postgresql.ARRAY(postgresql.TEXT)), bindparam("growth", type_=Float)
)


async def analyze_grown(
    session: AsyncSession, tables: Sequence[Table] = WRITE_PATH_TABLES, growth: float = GROWTH
) -> list[str]:
    """ANALYZE those of `tables` that have grown by more than `growth` (a fraction) since
    PostgreSQL last measured them; the names analyzed, in the order they were.

    In the caller's transaction, so the statistics include what it wrote. SKIP_LOCKED: a table
    that another write is analyzing already is left to it rather than waited for.
    """
    if dialect_of(session) != "postgresql":
        await session.execute(text("PRAGMA optimize"))
        return []
    found = await session.execute(_GROWN, {"tables": [t.name for t in tables], "growth": growth})
    grown = list(found.scalars())
    if grown:
        # Names from the schema's own tables, never from a request.
        await session.execute(text(f"ANALYZE (SKIP_LOCKED) {', '.join(grown)}"))
    return grown
