"""Daily completions: the timeliness rollup, counted from the obligations already stored.

Revision ID: 0005_daily_completions
Revises: 0004_imports
Create Date: 2026-11-23 15:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from service.domain.rules import builtin_ruleset, load_ruleset
from service.store.completions import Tally
from service.store.types import UTCDateTime

# revision identifiers, used by Alembic.
revision: str = "0005_daily_completions"
down_revision: str | Sequence[str] | None = "0004_imports"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


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
    _count_stored_obligations(op.get_bind(), completions)


def _count_stored_obligations(connection: sa.Connection, completions: sa.Table) -> None:
    """Each organisation's completions, by day in its own calendar's timezone."""
    orgs = sa.table(
        "orgs",
        sa.column("id", sa.String),
        sa.column("ruleset_id", sa.String),
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
        if org.ruleset_text is None:
            calendar = builtin_ruleset(org.ruleset_id).calendar
        else:
            fmt = "json" if org.ruleset_format == "json" else "toml"
            calendar = load_ruleset(org.ruleset_text, format=fmt).calendar
        tally = Tally()
        met = connection.execute(
            sa.select(
                obligations.c.team_id,
                obligations.c.rule_id,
                obligations.c.met_at,
                obligations.c.due_at,
            ).where(obligations.c.org_id == org.id, obligations.c.met_at.is_not(None))
        )
        for row in met:
            tally.count(org.id, calendar, row._mapping)
        rows = tally.rows()
        if rows:
            connection.execute(completions.insert(), rows)


def downgrade() -> None:
    op.drop_table("daily_completions")
