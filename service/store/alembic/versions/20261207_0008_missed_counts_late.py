"""Timeliness counts a deadline missed then cancelled as late: the index of a worker's judged
deadlines takes those rows in, the closed-obligations index carries `cancelled_at`, and the
daily completions rollup is recounted under the new rule.

Revision ID: 0008_missed_counts_late
Revises: 0007_alert_settle
Create Date: 2026-12-07 06:10:00

"""

import json
import tomllib
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

from service.store.types import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = "0008_missed_counts_late"
down_revision: str | Sequence[str] | None = "0007_alert_settle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out rather than imported from the models: a migration must not change later.
_MET = sa.text("met_at IS NOT NULL")
_JUDGED = sa.text("met_at IS NOT NULL OR cancelled_at > due_at")
_MET_INDEX = "ix_obligations_met_org_id_worker_id_closed_at"
_JUDGED_INDEX = "ix_obligations_judged_org_id_worker_id_closed_at"
_WORKER_COLUMNS = ["org_id", "worker_id", "closed_at"]
_CLOSED_INDEX = "ix_obligations_org_id_closed_at"
_CLOSED_BEFORE = ["met_at", "due_at", "opened_at", "rule_id", "worker_id", "team_id"]
_CLOSED_AFTER = ["met_at", "cancelled_at", "due_at", "opened_at", "rule_id", "worker_id", "team_id"]


def upgrade() -> None:
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_index(_MET_INDEX, sqlite_where=_MET, postgresql_where=_MET)
        batch_op.create_index(
            _JUDGED_INDEX,
            _WORKER_COLUMNS,
            unique=False,
            sqlite_where=_JUDGED,
            postgresql_where=_JUDGED,
            postgresql_include=["met_at", "cancelled_at", "due_at", "rule_id", "team_id"],
        )
    _rebuild_closed_index(_CLOSED_AFTER)
    _recount(op.get_bind(), missed_counts=True)


def downgrade() -> None:
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_index(_JUDGED_INDEX, sqlite_where=_JUDGED, postgresql_where=_JUDGED)
        batch_op.create_index(
            _MET_INDEX,
            _WORKER_COLUMNS,
            unique=False,
            sqlite_where=_MET,
            postgresql_where=_MET,
            postgresql_include=["met_at", "due_at", "rule_id", "team_id"],
        )
    _rebuild_closed_index(_CLOSED_BEFORE)
    _recount(op.get_bind(), missed_counts=False)


def _rebuild_closed_index(include: list[str]) -> None:
    """PostgreSQL only: SQLite has no INCLUDE, so its index does not change."""
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(_CLOSED_INDEX, table_name="obligations")
    op.create_index(
        _CLOSED_INDEX, "obligations", ["org_id", "closed_at"], postgresql_include=include
    )


def _timezone(ruleset_text: str | None, ruleset_format: str) -> ZoneInfo:
    """The calendar's timezone: the built-in rulesets' and the rule format's default is London."""
    if ruleset_text is None:
        return ZoneInfo("Europe/London")
    doc = json.loads(ruleset_text) if ruleset_format == "json" else tomllib.loads(ruleset_text)
    return ZoneInfo(str(doc.get("calendar", {}).get("timezone", "Europe/London")))


def _recount(connection: sa.Connection, *, missed_counts: bool) -> None:
    """Each organisation's rollup counted again from its obligations, by local day: met ones
    on the day met, and (with `missed_counts`) missed-then-cancelled ones, late, on the day
    cancelled."""
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
        sa.column("cancelled_at", UTCDateTime()),
        sa.column("due_at", UTCDateTime()),
    )
    completions = sa.table(
        "daily_completions",
        sa.column("org_id", sa.String),
        sa.column("team_id", sa.String),
        sa.column("day", sa.Date),
        sa.column("rule_id", sa.String),
        sa.column("completed", sa.Integer),
        sa.column("on_time", sa.Integer),
    )
    counted = _JUDGED if missed_counts else _MET
    connection.execute(sa.delete(completions))
    for org in connection.execute(sa.select(orgs)).all():
        zone = _timezone(org.ruleset_text, org.ruleset_format)
        counts: dict[tuple[str, date, str], list[int]] = defaultdict(lambda: [0, 0])
        rows = connection.execute(
            sa.select(
                obligations.c.team_id,
                obligations.c.rule_id,
                obligations.c.met_at,
                obligations.c.cancelled_at,
                obligations.c.due_at,
            ).where(obligations.c.org_id == org.id, counted)
        )
        for row in rows:
            closed: datetime = row.met_at or row.cancelled_at
            day = closed.astimezone(zone).date()
            for team in ("", row.team_id) if row.team_id else ("",):
                cell = counts[(team, day, row.rule_id)]
                cell[0] += 1
                cell[1] += row.met_at is not None and row.met_at <= row.due_at
        values = [
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
        if values:
            connection.execute(completions.insert(), values)
