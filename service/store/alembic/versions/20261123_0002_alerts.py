"""Alerts and webhooks: the alerts outbox, subscriptions, deliveries and their attempts, and
obligations.next_check_at for the sweep.

Open obligations that exist already get next_check_at = opened_at, so the first sweep after
the upgrade raises the alerts of their current state (and only those).

Revision ID: 0002_alerts
Revises: f807c65611f5
Create Date: 2026-11-23 11:25:40.938834

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002_alerts"
down_revision: str | Sequence[str] | None = "f807c65611f5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TO_CHECK = sa.text("next_check_at IS NOT NULL")
_UNFANNED = sa.text("fanned_out_at IS NULL")
_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("obligation_id", sa.String(length=64), nullable=True),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=200), nullable=True),
        sa.Column("rule_id", sa.String(length=64), nullable=True),
        sa.Column("team_id", sa.String(length=200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fanned_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_alerts_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint(
            "org_id",
            "obligation_id",
            "type",
            "level",
            name=op.f("uq_alerts_org_id_obligation_id_type_level"),
        ),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_alerts_unfanned_created_at",
            ["created_at"],
            unique=False,
            sqlite_where=_UNFANNED,
            postgresql_where=_UNFANNED,
        )

    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("event_types", sa.JSON(), nullable=True),
        sa.Column("team_ids", sa.JSON(), nullable=True),
        sa.Column("rule_ids", sa.JSON(), nullable=True),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("previous_secret", sa.String(length=100), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_subscriptions_org_id_orgs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_subscriptions_org_id_created_at_id",
            ["org_id", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("subscription_id", sa.String(length=40), nullable=False),
        sa.Column("alert_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("round_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_deliveries_alert_id_alerts")
        ),
        sa.ForeignKeyConstraint(["org_id"], ["orgs.id"], name=op.f("fk_deliveries_org_id_orgs")),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_deliveries_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint(
            "alert_id", "subscription_id", name=op.f("uq_deliveries_alert_id_subscription_id")
        ),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_org_id_subscription_id_created_at",
            ["org_id", "subscription_id", "created_at", "id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_deliveries_pending_next_attempt_at",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=_PENDING,
            postgresql_where=_PENDING,
        )

    op.create_table(
        "delivery_attempts",
        sa.Column("delivery_id", sa.String(length=40), nullable=False),
        sa.Column("attempt", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("outcome", sa.String(length=12), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_attempts_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_delivery_attempts_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint("delivery_id", "attempt", name=op.f("pk_delivery_attempts")),
    )

    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_obligations_next_check_at",
            ["next_check_at"],
            unique=False,
            sqlite_where=_TO_CHECK,
            postgresql_where=_TO_CHECK,
        )
    op.execute("UPDATE obligations SET next_check_at = opened_at WHERE closed_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("obligations", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_obligations_next_check_at", sqlite_where=_TO_CHECK, postgresql_where=_TO_CHECK
        )
        batch_op.drop_column("next_check_at")

    op.drop_table("delivery_attempts")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_deliveries_pending_next_attempt_at",
            sqlite_where=_PENDING,
            postgresql_where=_PENDING,
        )
        batch_op.drop_index("ix_deliveries_org_id_subscription_id_created_at")

    op.drop_table("deliveries")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index("ix_subscriptions_org_id_created_at_id")

    op.drop_table("subscriptions")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_alerts_unfanned_created_at", sqlite_where=_UNFANNED, postgresql_where=_UNFANNED
        )

    op.drop_table("alerts")
