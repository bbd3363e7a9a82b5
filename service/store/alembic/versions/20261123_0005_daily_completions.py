"""Dashboard reads: the daily completions rollup (counted from obligations already stored),
an index of each worker's completions, and the overdue list's order in the open due index.

Revision ID: 0005_daily_completions
Revises: 0004_imports
Create Date: 2026-11-23 15:00:00

"""

import json
import tomllib
from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

from service.store.types import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = "0005_daily_completions"
down_revision: str | Sequence[str] | None = "0004_imports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("closed_at IS NULL")
# Written out rather than imported from the models: a migration must not change later.
_OPEN_INCLUDE_BEFORE = [
    "id",
    "due_at",
    "warn_at",
    "opened_at",
    "first_escalation_at",
    "rule_id",
    "rule_name",
]
_OPEN_INCLUDE = ["due_at", "warn_at", "opened_at", "first_escalation_at", "rule_id"]
_LOADS_INDEX = "ix_obligations_open_org_id_worker_id_team_id_case_id"
_LOADS_COLUMNS = ["org_id", "worker_id", "team_id", "case_id"]


def upgrade() -> None:
    completions = op.create_table(
        "daily_completions",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("team_id", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("on_time", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_daily_completions_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "team_id", "day", "rule_id", name=op.f("pk_daily_completions")
        ),
    )
    _rebuild_loads_index(_OPEN_INCLUDE)
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_obligations_open_org_id_due_at", sqlite_where=_OPEN, postgresql_where=_OPEN
        )
        batch_op.create_index(
            "ix_obligations_open_org_id_due_at_id",
            ["org_id", "due_at", "id"],
            unique=False,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        )
        batch_op.create_index(
            "ix_obligations_met_org_id_worker_id_closed_at",
            ["org_id", "worker_id", "closed_at"],
            unique=False,
            sqlite_where=sa.text("met_at IS NOT NULL"),
            postgresql_where=sa.text("met_at IS NOT NULL"),
            postgresql_include=["met_at", "due_at", "rule_id", "team_id"],
        )
    _count_stored_obligations(op.get_bind(), completions)


def _timezone(ruleset_text: str | None, ruleset_format: str) -> ZoneInfo:
    """The calendar's timezone: the built-in rulesets' and the rule format's default is London."""
    if ruleset_text is None:
        return ZoneInfo("Europe/London")
    doc = json.loads(ruleset_text) if ruleset_format == "json" else tomllib.loads(ruleset_text)
    return ZoneInfo(str(doc.get("calendar", {}).get("timezone", "Europe/London")))


def _count_stored_obligations(connection: sa.Connection, completions: sa.Table) -> None:
    """Each organisation's completions, by day in its own calendar's timezone.

    Written out rather than calling the write path's code: a migration must not change later.
    """
    orgs = sa.table(
        "orgs",
        sa.column("id", sa.String),
        sa.column("ruleset_text", sa.Text),
        sa.column("ruleset_format", sa.String),
    )
    obligations = sa.table(
        "obligations",
        sa.column("org_id", sa.String),
        sa.column("team_id", sa.String),
        sa.column("rule_id", sa.String),
        sa.column("met_at", UTCDateTime()),
        sa.column("due_at", UTCDateTime()),
    )
    for org in connection.execute(sa.select(orgs)).all():
        zone = _timezone(org.ruleset_text, org.ruleset_format)
        counts: dict[tuple[str, date, str], list[int]] = defaultdict(lambda: [0, 0])
        met = connection.execute(
            sa.select(
                obligations.c.team_id,
                obligations.c.rule_id,
                obligations.c.met_at,
                obligations.c.due_at,
            ).where(obligations.c.org_id == org.id, obligations.c.met_at.is_not(None))
        )
        for row in met:
            day = row.met_at.astimezone(zone).date()
            for team in ("", row.team_id) if row.team_id else ("",):
                cell = counts[(team, day, row.rule_id)]
                cell[0] += 1
                cell[1] += row.met_at <= row.due_at
        rows = [
            {
                "org_id": org.id,
                "team_id": team,
                "day": day,
                "rule_id": rule,
                "completed": n,
                "on_time": punctual,
            }
            for (team, day, rule), (n, punctual) in counts.items()
        ]
        if rows:
            connection.execute(completions.insert(), rows)


def _rebuild_loads_index(include: list[str]) -> None:
    """Rebuild the open-work index with `include` (PostgreSQL only; SQLite has no INCLUDE)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(_LOADS_INDEX, table_name="obligations")
    op.create_index(
        _LOADS_INDEX,
        "obligations",
        _LOADS_COLUMNS,
        unique=False,
        postgresql_where=_OPEN,
        postgresql_include=include,
    )


def downgrade() -> None:
    _rebuild_loads_index(_OPEN_INCLUDE_BEFORE)
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_obligations_open_org_id_due_at_id", sqlite_where=_OPEN, postgresql_where=_OPEN
        )
        batch_op.create_index(
            "ix_obligations_open_org_id_due_at",
            ["org_id", "due_at"],
            unique=False,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        )
        batch_op.drop_index(
            "ix_obligations_met_org_id_worker_id_closed_at",
            sqlite_where=sa.text("met_at IS NOT NULL"),
            postgresql_where=sa.text("met_at IS NOT NULL"),
        )
    op.drop_table("daily_completions")
