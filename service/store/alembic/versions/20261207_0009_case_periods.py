"""Caseloads: `case_periods`, when each case is open and to whom it is allocated, and the
digest on `cases` that tells the write path when a case's periods changed.

Existing cases get their periods from their stored (non-void) events, by the rule of
`domain/caseload.py` written out here: a migration must not change later.

Revision ID: 0009_case_periods
Revises: 0008_missed_counts_late
Create Date: 2026-12-07 06:40:00

"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from service.store.types import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = "0009_case_periods"
down_revision: str | Sequence[str] | None = "0008_missed_counts_late"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("ends_at IS NULL")


def upgrade() -> None:
    periods = op.create_table(
        "case_periods",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("worker_id", sa.String(length=200), nullable=True),
        sa.Column("team_id", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_case_periods_org_id_orgs")),
        sa.PrimaryKeyConstraint("org_id", "case_id", "position", name=op.f("pk_case_periods")),
    )
    with op.batch_alter_table("case_periods", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_periods_open_org_id_worker_id_team_id",
            ["org_id", "worker_id", "team_id", "starts_at"],
            unique=False,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        )
        batch_op.create_index(
            "ix_case_periods_open_org_id_team_id_worker_id",
            ["org_id", "team_id", "worker_id", "starts_at"],
            unique=False,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        )
        batch_op.create_index(
            "ix_case_periods_org_id_ends_at",
            ["org_id", "ends_at"],
            unique=False,
            postgresql_include=["starts_at", "worker_id", "team_id"],
        )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("periods_digest", sa.String(length=64), nullable=True))
    _fill(op.get_bind(), periods)


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("periods_digest")
    op.drop_table("case_periods")


def _periods(log: Sequence[Any]) -> list[tuple[datetime, datetime | None, Any, Any]]:
    """Open from the first event, closed by `case_closed`, open again by `case_reopened`,
    a new period at each change of worker or team."""
    found: list[tuple[datetime, datetime | None, Any, Any]] = []
    worker = team = None
    opened: datetime | None = None
    for event in log:
        next_worker, next_team = event.worker_id or worker, event.team_id or team
        at = event.occurred_at
        if opened is None:
            if not found or event.type == "case_reopened":
                opened = at
        elif (next_worker, next_team) != (worker, team) and at > opened:
            found.append((opened, at, worker, team))
            opened = at
        worker, team = next_worker, next_team
        if event.type == "case_closed" and opened is not None:
            found.append((opened, at, worker, team))
            opened = None
    if opened is not None:
        found.append((opened, None, worker, team))
    return found


def _fill(connection: sa.Connection, periods: sa.Table) -> None:
    """Every stored case's periods; its digest stays empty, so its first re-derivation
    writes them again in the write path's own terms."""
    events = sa.table(
        "events",
        sa.column("org_id", sa.String),
        sa.column("case_id", sa.String),
        sa.column("id", sa.String),
        sa.column("type", sa.String),
        sa.column("occurred_at", UTCDateTime()),
        sa.column("worker_id", sa.String),
        sa.column("team_id", sa.String),
        sa.column("voided_at", UTCDateTime()),
    )
    rows = connection.execute(
        sa.select(events)
        .where(events.c.voided_at.is_(None))
        .order_by(events.c.org_id, events.c.case_id, events.c.occurred_at, events.c.id)
    )
    batch: list[dict[str, Any]] = []
    log: list[Any] = []

    def flush_case() -> None:
        for position, (starts, ends, worker, team) in enumerate(_periods(log)):
            batch.append(
                {
                    "org_id": log[0].org_id,
                    "case_id": log[0].case_id,
                    "position": position,
                    "starts_at": starts,
                    "ends_at": ends,
                    "worker_id": worker,
                    "team_id": team,
                }
            )
        log.clear()

    for row in rows:
        if log and (row.org_id, row.case_id) != (log[0].org_id, log[0].case_id):
            flush_case()
            if len(batch) >= 5000:
                connection.execute(periods.insert(), batch)
                batch.clear()
        log.append(row)
    if log:
        flush_case()
    if batch:
        connection.execute(periods.insert(), batch)
