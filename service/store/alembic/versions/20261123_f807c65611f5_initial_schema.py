"""Initial schema: orgs, API keys, cases, events and obligations.

Revision ID: f807c65611f5
Revises:
Create Date: 2026-11-23 10:59:40.256872

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "f807c65611f5"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orgs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("ruleset_id", sa.String(length=100), nullable=False),
        sa.Column("ruleset_text", sa.Text(), nullable=True),
        sa.Column("ruleset_format", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orgs")),
        sa.UniqueConstraint("name", name=op.f("uq_orgs_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_api_keys_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "cases",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=200), nullable=False),
        sa.Column("worker_id", sa.String(length=200), nullable=True),
        sa.Column("team_id", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_cases_org_id_orgs")),
        sa.PrimaryKeyConstraint("org_id", "case_id", name=op.f("pk_cases")),
    )
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_org_id_team_id", ["org_id", "team_id"], unique=False)
        batch_op.create_index("ix_cases_org_id_worker_id", ["org_id", "worker_id"], unique=False)

    op.create_table(
        "events",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("case_id", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker_id", sa.String(length=200), nullable=True),
        sa.Column("team_id", sa.String(length=200), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_events_org_id_orgs")),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_org_id_case_id_occurred_at",
            ["org_id", "case_id", "occurred_at"],
            unique=False,
        )

    op.create_table(
        "obligations",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.String(length=200), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("rule_name", sa.String(length=300), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("warn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalate_at", sa.JSON(), nullable=False),
        sa.Column("at_risk_periods", sa.JSON(), nullable=False),
        sa.Column("met_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opened_by_event", sa.String(length=200), nullable=False),
        sa.Column("met_by_event", sa.String(length=200), nullable=True),
        sa.Column("cancelled_by_event", sa.String(length=200), nullable=True),
        sa.Column("worker_id", sa.String(length=200), nullable=True),
        sa.Column("team_id", sa.String(length=200), nullable=True),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_obligations_org_id_orgs")),
        sa.PrimaryKeyConstraint("org_id", "id", name=op.f("pk_obligations")),
    )
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_obligations_open_org_id_due_at",
            ["org_id", "due_at"],
            unique=False,
            sqlite_where=sa.text("closed_at IS NULL"),
            postgresql_where=sa.text("closed_at IS NULL"),
        )
        batch_op.create_index(
            "ix_obligations_open_org_id_team_id",
            ["org_id", "team_id", "due_at"],
            unique=False,
            sqlite_where=sa.text("closed_at IS NULL"),
            postgresql_where=sa.text("closed_at IS NULL"),
        )
        batch_op.create_index(
            "ix_obligations_open_org_id_worker_id",
            ["org_id", "worker_id", "due_at"],
            unique=False,
            sqlite_where=sa.text("closed_at IS NULL"),
            postgresql_where=sa.text("closed_at IS NULL"),
        )
        batch_op.create_index("ix_obligations_org_id_case_id", ["org_id", "case_id"], unique=False)
        batch_op.create_index(
            "ix_obligations_org_id_due_at_id", ["org_id", "due_at", "id"], unique=False
        )

    op.create_table(
        "risk_periods",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("obligation_id", sa.String(length=64), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_risk_periods_org_id_orgs")),
        sa.PrimaryKeyConstraint(
            "org_id", "obligation_id", "starts_at", name=op.f("pk_risk_periods")
        ),
    )


def downgrade() -> None:
    op.drop_table("risk_periods")
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_index("ix_obligations_org_id_due_at_id")
        batch_op.drop_index("ix_obligations_org_id_case_id")
        batch_op.drop_index(
            "ix_obligations_open_org_id_worker_id",
            sqlite_where=sa.text("closed_at IS NULL"),
            postgresql_where=sa.text("closed_at IS NULL"),
        )
        batch_op.drop_index(
            "ix_obligations_open_org_id_team_id",
            sqlite_where=sa.text("closed_at IS NULL"),
            postgresql_where=sa.text("closed_at IS NULL"),
        )
        batch_op.drop_index(
            "ix_obligations_open_org_id_due_at",
            sqlite_where=sa.text("closed_at IS NULL"),
            postgresql_where=sa.text("closed_at IS NULL"),
        )

    op.drop_table("obligations")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_org_id_case_id_occurred_at")

    op.drop_table("events")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index("ix_cases_org_id_worker_id")
        batch_op.drop_index("ix_cases_org_id_team_id")

    op.drop_table("cases")
    op.drop_table("api_keys")
    op.drop_table("orgs")
