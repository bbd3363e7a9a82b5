"""The schema. Every row carries its org_id, and every index leads with it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Column, ForeignKey, Index, MetaData, String, Text, text
from sqlmodel import Field, SQLModel

from service.store.types import UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING_CONVENTION
metadata: MetaData = SQLModel.metadata

_OPEN = text("closed_at IS NULL")


def _utc(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _org_fk() -> Any:
    return Field(sa_column=Column(String(64), ForeignKey("orgs.id"), primary_key=True))


class Org(SQLModel, table=True):
    __tablename__: ClassVar[str] = "orgs"

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    ruleset_id: str = Field(sa_column=Column(String(100), nullable=False))
    ruleset_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    ruleset_format: str = Field(default="toml", sa_column=Column(String(10), nullable=False))
    created_at: datetime = _utc()


class ApiKey(SQLModel, table=True):
    __tablename__: ClassVar[str] = "api_keys"

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    org_id: str = Field(sa_column=Column(String(64), ForeignKey("orgs.id"), nullable=False))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    key_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    prefix: str = Field(sa_column=Column(String(16), nullable=False))
    scopes: str = Field(sa_column=Column(String(200), nullable=False))
    created_at: datetime = _utc()
    revoked_at: datetime | None = _utc(nullable=True)


class Case(SQLModel, table=True):
    __tablename__: ClassVar[str] = "cases"
    __table_args__ = (
        Index("ix_cases_org_id_worker_id", "org_id", "worker_id"),
        Index("ix_cases_org_id_team_id", "org_id", "team_id"),
    )

    org_id: str = _org_fk()
    case_id: str = Field(sa_column=Column(String(200), primary_key=True))
    worker_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    team_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    status: str = Field(sa_column=Column(String(10), nullable=False))
    updated_at: datetime = _utc()


class Event(SQLModel, table=True):
    __tablename__: ClassVar[str] = "events"
    __table_args__ = (
        Index("ix_events_org_id_case_id_occurred_at", "org_id", "case_id", "occurred_at"),
    )

    org_id: str = _org_fk()
    id: str = Field(sa_column=Column(String(200), primary_key=True))
    case_id: str = Field(sa_column=Column(String(200), nullable=False))
    type: str = Field(sa_column=Column(String(64), nullable=False))
    occurred_at: datetime = _utc()
    worker_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    team_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    content_hash: str = Field(sa_column=Column(String(64), nullable=False))
    received_at: datetime = _utc()
    voided_at: datetime | None = _utc(nullable=True)
    void_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Obligation(SQLModel, table=True):
    """A derived deadline, replaced whenever its case is re-derived.

    `closed_at` (met or cancelled) and the partial indexes on open rows keep "what is
    overdue or due soon now" and per-worker counts to the open obligations only.
    """

    __tablename__: ClassVar[str] = "obligations"
    __table_args__ = (
        Index("ix_obligations_org_id_case_id", "org_id", "case_id"),
        Index("ix_obligations_org_id_due_at_id", "org_id", "due_at", "id"),
        Index(
            "ix_obligations_open_org_id_due_at",
            "org_id",
            "due_at",
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
        Index(
            "ix_obligations_open_org_id_worker_id",
            "org_id",
            "worker_id",
            "due_at",
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
        Index(
            "ix_obligations_open_org_id_team_id",
            "org_id",
            "team_id",
            "due_at",
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
    )

    org_id: str = _org_fk()
    id: str = Field(sa_column=Column(String(64), primary_key=True))
    case_id: str = Field(sa_column=Column(String(200), nullable=False))
    rule_id: str = Field(sa_column=Column(String(64), nullable=False))
    rule_name: str = Field(sa_column=Column(String(300), nullable=False))
    sequence: int
    opened_at: datetime = _utc()
    due_at: datetime = _utc()
    warn_at: datetime | None = _utc(nullable=True)
    escalate_at: list[str] = Field(sa_column=Column(JSON, nullable=False))
    at_risk_periods: list[list[str | None]] = Field(sa_column=Column(JSON, nullable=False))
    met_at: datetime | None = _utc(nullable=True)
    cancelled_at: datetime | None = _utc(nullable=True)
    closed_at: datetime | None = _utc(nullable=True)
    opened_by_event: str = Field(sa_column=Column(String(200), nullable=False))
    met_by_event: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    cancelled_by_event: str | None = Field(
        default=None, sa_column=Column(String(200), nullable=True)
    )
    worker_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    team_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))


class RiskPeriod(SQLModel, table=True):
    """When an obligation is at risk, one row a period, so "at risk at T" is a join in SQL.

    Written beside `obligations.at_risk_periods` whenever an obligation changes.
    """

    __tablename__: ClassVar[str] = "risk_periods"

    org_id: str = _org_fk()
    obligation_id: str = Field(sa_column=Column(String(64), primary_key=True))
    starts_at: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    ends_at: datetime | None = _utc(nullable=True)
