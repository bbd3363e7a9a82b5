"""Indexes only ever searched for a value leave out the rows without one: cases by worker and
by team, obligations by when they closed, case periods by when they ended.

Without statistics PostgreSQL takes a small table for nearly empty, and then reading a case's
row or obligations through any index that leads with the organisation looks as cheap as through
the one that names the case; these indexes were the ones it chose. A partial index is no
candidate for a search that does not imply its condition, and is smaller besides
(docs/operations.md, Statistics).

Revision ID: 0011_partial_lookup_indexes
Revises: 0010_jobs
Create Date: 2026-12-07 06:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011_partial_lookup_indexes"
down_revision: str | Sequence[str] | None = "0010_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from the models: a migration must not change later.
_CLOSED_INCLUDE = [
    "met_at",
    "cancelled_at",
    "due_at",
    "opened_at",
    "rule_id",
    "worker_id",
    "team_id",
]
# name, table, columns, the column searched for a value, PostgreSQL's INCLUDE
_INDEXES: tuple[tuple[str, str, list[str], str, list[str]], ...] = (
    ("ix_cases_org_id_worker_id", "cases", ["org_id", "worker_id"], "worker_id", []),
    ("ix_cases_org_id_team_id", "cases", ["org_id", "team_id"], "team_id", []),
    (
        "ix_obligations_org_id_closed_at",
        "obligations",
        ["org_id", "closed_at"],
        "closed_at",
        _CLOSED_INCLUDE,
    ),
    (
        "ix_case_periods_org_id_ends_at",
        "case_periods",
        ["org_id", "ends_at"],
        "ends_at",
        ["starts_at", "worker_id", "team_id"],
    ),
)


def upgrade() -> None:
    for name, table, columns, searched, include in _INDEXES:
        _replace(name, table, columns, include, sa.text(f"{searched} IS NOT NULL"))


def downgrade() -> None:
    for name, table, columns, _searched, include in _INDEXES:
        _replace(name, table, columns, include, None)


def _replace(
    name: str, table: str, columns: list[str], include: list[str], where: sa.TextClause | None
) -> None:
    op.drop_index(name, table_name=table)
    op.create_index(
        name,
        table,
        columns,
        unique=False,
        sqlite_where=where,
        postgresql_where=where,
        postgresql_include=include,
    )
