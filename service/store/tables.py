"""The schema. Every row carries its org_id, and every index leads with it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
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
# Only what the summary and the loads read: a narrow index is a fast one (about 30% at a
# million obligations against one that also carried the id and the rule's name).
DASHBOARD_OPEN_COLUMNS = ("due_at", "warn_at", "opened_at", "first_escalation_at", "rule_id")
DASHBOARD_CLOSED_COLUMNS = (
    "met_at",
    "cancelled_at",
    "due_at",
    "opened_at",
    "rule_id",
    "worker_id",
    "team_id",
)
# What timeliness counts: met, or missed then cancelled (`store.obligations.judged`).
JUDGED = text("met_at IS NOT NULL OR cancelled_at > due_at")
_TO_CHECK = text("next_check_at IS NOT NULL")
_UNFANNED = text("fanned_out_at IS NULL")
_PENDING = text("status = 'pending'")
# Indexes only ever searched for a value leave out the rows without one: smaller, and (partial)
# no candidate for reading a case's rows by organisation alone, which PostgreSQL would otherwise
# choose while it takes a small table with no statistics for nearly empty (migration 0011).
_HAS_WORKER = text("worker_id IS NOT NULL")
_HAS_TEAM = text("team_id IS NOT NULL")
_CLOSED = text("closed_at IS NOT NULL")
_ENDED = text("ends_at IS NOT NULL")


def _utc(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _org_fk() -> Any:
    return Field(sa_column=Column(String(64), ForeignKey("orgs.id"), primary_key=True))


def _org_key() -> Any:
    """The organisation of a row the write path fills, without a foreign key: every write
    reads its ruleset under a share lock on the organisation's row (`lock_ruleset`), which
    holds that row for the transaction, and no organisation is ever deleted. A foreign key
    made PostgreSQL look the row up again for every row written: 40% of the time to insert
    an import's events (migration 0017)."""
    return Field(sa_column=Column(String(64), primary_key=True))


class Org(SQLModel, table=True):
    __tablename__: ClassVar[str] = "orgs"

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    ruleset_id: str = Field(sa_column=Column(String(100), nullable=False))
    ruleset_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    ruleset_format: str = Field(default="toml", sa_column=Column(String(10), nullable=False))
    created_at: datetime = _utc()
    # The bank-holiday data the open cases were last derived with (calendar.CALENDAR_DATA_VERSION).
    calendar_data: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))


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
        Index(
            "ix_cases_org_id_worker_id",
            "org_id",
            "worker_id",
            sqlite_where=_HAS_WORKER,
            postgresql_where=_HAS_WORKER,
        ),
        Index(
            "ix_cases_org_id_team_id",
            "org_id",
            "team_id",
            sqlite_where=_HAS_TEAM,
            postgresql_where=_HAS_TEAM,
        ),
    )

    org_id: str = _org_key()
    case_id: str = Field(sa_column=Column(String(200), primary_key=True))
    worker_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    team_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    status: str = Field(sa_column=Column(String(10), nullable=False))
    updated_at: datetime = _utc()
    # What the case's rows in `case_periods` were written from, so a write that leaves them
    # as they were need not touch them (None until they are first written).
    periods_digest: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))


class Event(SQLModel, table=True):
    __tablename__: ClassVar[str] = "events"
    __table_args__ = (
        Index("ix_events_org_id_case_id_occurred_at", "org_id", "case_id", "occurred_at"),
    )

    org_id: str = _org_key()
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
        # What is overdue, in the order the dashboard lists it (a page stops early).
        Index(
            "ix_obligations_open_org_id_due_at_id",
            "org_id",
            "due_at",
            "id",
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
        # The dashboard (store/dashboard_reads.py): open work counted per worker, team and case in
        # index order, from this index alone on PostgreSQL (INCLUDE).
        Index(
            "ix_obligations_open_org_id_worker_id_team_id_case_id",
            "org_id",
            "worker_id",
            "team_id",
            "case_id",
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
            postgresql_include=list(DASHBOARD_OPEN_COLUMNS),
        ),
        # Obligations closed after an instant: still open at a past as_of, and completions
        # by period for timeliness (index-only on PostgreSQL).
        Index(
            "ix_obligations_org_id_closed_at",
            "org_id",
            "closed_at",
            sqlite_where=_CLOSED,
            postgresql_where=_CLOSED,
            postgresql_include=list(DASHBOARD_CLOSED_COLUMNS),
        ),
        # One worker's judged deadlines for timeliness (organisations and teams read the
        # daily_completions rollup instead), index-only on PostgreSQL.
        Index(
            "ix_obligations_judged_org_id_worker_id_closed_at",
            "org_id",
            "worker_id",
            "closed_at",
            sqlite_where=JUDGED,
            postgresql_where=JUDGED,
            postgresql_include=["met_at", "cancelled_at", "due_at", "rule_id", "team_id"],
        ),
        # Not led by org_id: the alert sweep visits every organisation's due checks at once.
        Index(
            "ix_obligations_next_check_at",
            "next_check_at",
            sqlite_where=_TO_CHECK,
            postgresql_where=_TO_CHECK,
        ),
    )

    org_id: str = _org_key()
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
    met_at_latest: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    opened_by_event: str = Field(sa_column=Column(String(200), nullable=False))
    met_by_event: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    cancelled_by_event: str | None = Field(
        default=None, sa_column=Column(String(200), nullable=True)
    )
    worker_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    team_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    # A digest of every other column, so re-derivation finds what changed without reading rows.
    digest: str = Field(sa_column=Column(String(32), nullable=False))
    # When the alerts it owes can next change (domain.alerts.next_check_at); None: never again.
    next_check_at: datetime | None = _utc(nullable=True)
    # The earliest of escalate_at, as a column so "escalated at T" is a comparison in SQL.
    first_escalation_at: datetime | None = _utc(nullable=True)
    # With an agreed extension, the rule's due date, which timeliness counts against.
    original_due_at: datetime | None = _utc(nullable=True)
    # The code of the reason recorded for it, as a column so timeliness can count "late with
    # a reason" in SQL; the reason itself is in `clock`.
    delay_reason: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    # What was said of its clock (reason, extension, pauses: store/obligations.py); None: nothing.
    clock: dict[str, Any] | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )


class RiskPeriod(SQLModel, table=True):
    """When an obligation is at risk, one row a period, so "at risk at T" is a join in SQL.

    Written beside `obligations.at_risk_periods` whenever an obligation changes.
    """

    __tablename__: ClassVar[str] = "risk_periods"

    org_id: str = _org_key()
    obligation_id: str = Field(sa_column=Column(String(64), primary_key=True))
    starts_at: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    ends_at: datetime | None = _utc(nullable=True)


_PERIOD_OPEN = text("ends_at IS NULL")


class CasePeriod(SQLModel, table=True):
    """When a case is open and to whom it is allocated, one row a period, so a caseload at T
    (the open cases allocated to a worker at T) is counted in SQL.

    Written by the write path whenever a case's periods change (domain/caseload.py); the
    partial indexes on periods still open keep "caseload now" to an index-only count.
    """

    __tablename__: ClassVar[str] = "case_periods"
    __table_args__ = (
        Index(
            "ix_case_periods_open_org_id_worker_id_team_id",
            "org_id",
            "worker_id",
            "team_id",
            "starts_at",
            sqlite_where=_PERIOD_OPEN,
            postgresql_where=_PERIOD_OPEN,
        ),
        Index(
            "ix_case_periods_open_org_id_team_id_worker_id",
            "org_id",
            "team_id",
            "worker_id",
            "starts_at",
            sqlite_where=_PERIOD_OPEN,
            postgresql_where=_PERIOD_OPEN,
        ),
        # Periods that ended after an instant: open at a past as_of.
        Index(
            "ix_case_periods_org_id_ends_at",
            "org_id",
            "ends_at",
            sqlite_where=_ENDED,
            postgresql_where=_ENDED,
            postgresql_include=["starts_at", "worker_id", "team_id"],
        ),
    )

    org_id: str = _org_key()
    case_id: str = Field(sa_column=Column(String(200), primary_key=True))
    position: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    starts_at: datetime = _utc()
    ends_at: datetime | None = _utc(nullable=True)
    worker_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    team_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))


class DailyCompletion(SQLModel, table=True):
    """Deadlines met per local day and rule: what the timeliness widget adds up.

    Counting a year of completions from `obligations` visits every one of them; these rows
    are kept exact by the write path instead (store/completions.py). `team_id` is '' for
    the whole organisation's row (team ids are never empty), else the team's id.
    """

    __tablename__: ClassVar[str] = "daily_completions"

    org_id: str = _org_key()
    team_id: str = Field(sa_column=Column(String(200), primary_key=True))
    day: date = Field(sa_column=Column(Date, primary_key=True))
    rule_id: str = Field(sa_column=Column(String(64), primary_key=True))
    completed: int
    on_time: int
    late_with_reason: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )


class Subscription(SQLModel, table=True):
    """A webhook endpoint and the alerts it wants.

    The secret is kept in the clear because signing needs it; during a rotation the previous
    secret keeps signing beside the new one until `previous_secret_expires_at`.
    """

    __tablename__: ClassVar[str] = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_org_id_created_at_id", "org_id", "created_at", "id"),)

    id: str = Field(sa_column=Column(String(40), primary_key=True))
    org_id: str = Field(sa_column=Column(String(64), ForeignKey("orgs.id"), nullable=False))
    url: str = Field(sa_column=Column(Text, nullable=False))
    description: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    event_types: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    team_ids: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    rule_ids: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    escalation_levels: list[int] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    worker_ids: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # `webhook` (signed alerts to any URL) or `alertmanager` (an Alertmanager's alerts API).
    kind: str = Field(
        default="webhook",
        sa_column=Column(String(20), nullable=False, server_default=text("'webhook'")),
    )
    # Set for a digest subscription ("daily 08:00"): digests only, none of its periods
    # before `digest_starts_at` (when the schedule was set).
    digest_schedule: str | None = Field(default=None, sa_column=Column(String(40), nullable=True))
    digest_starts_at: datetime | None = _utc(nullable=True)
    secret: str = Field(sa_column=Column(String(100), nullable=False))
    previous_secret: str | None = Field(default=None, sa_column=Column(String(100), nullable=True))
    previous_secret_expires_at: datetime | None = _utc(nullable=True)
    enabled: bool = Field(sa_column=Column(Boolean, nullable=False))
    disabled_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    failing_since: datetime | None = _utc(nullable=True)
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class Alert(SQLModel, table=True):
    """The outbox: one row per alert ever raised, written in the transaction of the state it
    reports. The unique key is what makes "at most once, ever" hold across replicas, restarts
    and re-derivations; `fanned_out_at` is set once deliveries exist for it."""

    __tablename__: ClassVar[str] = "alerts"
    __table_args__ = (
        UniqueConstraint("org_id", "obligation_id", "type", "level"),
        Index(
            "ix_alerts_unfanned_created_at",
            "created_at",
            sqlite_where=_UNFANNED,
            postgresql_where=_UNFANNED,
        ),
    )

    id: str = Field(sa_column=Column(String(40), primary_key=True))
    # No foreign key, as for `_org_key`: alerts are written beside the obligations they report.
    org_id: str = Field(sa_column=Column(String(64), nullable=False))
    # Null for webhook.test pings, which concern no obligation.
    obligation_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    type: str = Field(sa_column=Column(String(40), nullable=False))
    level: int = Field(sa_column=Column(Integer, nullable=False))
    case_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    rule_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    team_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    worker_id: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = _utc()
    fanned_out_at: datetime | None = _utc(nullable=True)
    # Raised by an event write rather than by time: its first attempt waits the settle period
    # (CASECLOCK_ALERT_SETTLE_SECONDS), so a history posted in quick requests is judged whole.
    settles: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )


class Digest(SQLModel, table=True):
    """A digest raised for one subscription, team ("" for every team) and period: the key
    is what makes it once per period, ever, across replicas and restarts."""

    __tablename__: ClassVar[str] = "digests"

    subscription_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True
        )
    )
    team_id: str = Field(sa_column=Column(String(200), primary_key=True))
    period: str = Field(sa_column=Column(String(20), primary_key=True))
    org_id: str = Field(sa_column=Column(String(64), ForeignKey("orgs.id"), nullable=False))
    created_at: datetime = _utc()


class Delivery(SQLModel, table=True):
    """One alert to one subscription. Its id is the `webhook-id` of every attempt.

    A replica claims a pending delivery by moving `next_attempt_at` past the end of its lease
    and counting the attempt, so a replica that dies mid-POST leaves a delivery that falls due
    again by itself; results are recorded only by the claim that is still current.
    """

    __tablename__: ClassVar[str] = "deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "subscription_id"),
        Index(
            "ix_deliveries_pending_next_attempt_at",
            "next_attempt_at",
            sqlite_where=_PENDING,
            postgresql_where=_PENDING,
        ),
        Index(
            "ix_deliveries_org_id_subscription_id_created_at",
            "org_id",
            "subscription_id",
            "created_at",
            "id",
        ),
    )

    id: str = Field(sa_column=Column(String(40), primary_key=True))
    org_id: str = Field(sa_column=Column(String(64), ForeignKey("orgs.id"), nullable=False))
    subscription_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False
        )
    )
    alert_id: str = Field(sa_column=Column(String(40), ForeignKey("alerts.id"), nullable=False))
    status: str = Field(sa_column=Column(String(10), nullable=False))
    attempts: int = Field(sa_column=Column(Integer, nullable=False))
    # Attempts since the delivery was first enqueued or last redelivered: the retry schedule
    # position.
    round_attempts: int = Field(sa_column=Column(Integer, nullable=False))
    next_attempt_at: datetime | None = _utc(nullable=True)
    last_attempt_at: datetime | None = _utc(nullable=True)
    last_status_code: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    succeeded_at: datetime | None = _utc(nullable=True)
    created_at: datetime = _utc()


class DeliveryAttempt(SQLModel, table=True):
    """Every attempt, as it happened: the deliveries log."""

    __tablename__: ClassVar[str] = "delivery_attempts"

    delivery_id: str = Field(
        sa_column=Column(
            String(40), ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True
        )
    )
    attempt: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    org_id: str = Field(sa_column=Column(String(64), ForeignKey("orgs.id"), nullable=False))
    attempted_at: datetime = _utc()
    status_code: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    latency_ms: int = Field(sa_column=Column(Integer, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # succeeded, retrying, failed, or superseded (another replica's claim was current).
    outcome: str = Field(sa_column=Column(String(12), nullable=False))


class Import(SQLModel, table=True):
    """A kept import report (docs/imports.md). The report holds counts, headings and the
    refused cells' own values only: never another column of a row, so no personal data."""

    __tablename__: ClassVar[str] = "imports"
    __table_args__ = (Index("ix_imports_org_id_created_at_id", "org_id", "created_at", "id"),)

    id: str = Field(sa_column=Column(String(40), primary_key=True))
    org_id: str = Field(sa_column=Column(String(64), ForeignKey("orgs.id"), nullable=False))
    extracted_on: date = Field(sa_column=Column(Date, nullable=False))
    created_at: datetime = _utc()
    report: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


_UNFINISHED = text("state IN ('queued', 'running')")


class Job(SQLModel, table=True):
    """Long work run in the background (an Annex A import, a rules activation), and how far
    it has got.

    A runner claims a job by moving `lease_until` ahead and counting the attempt; every step
    it commits renews the lease and saves its `checkpoint` in the same transaction, but only
    while the attempt count is still its own, so a replica that dies mid-job leaves a job the
    next claim resumes from its last committed step, and no two replicas both apply one.
    `payload` holds the uploaded workbook until the job ends; it is then cleared.
    """

    __tablename__: ClassVar[str] = "jobs"
    __table_args__ = (
        Index(
            "ix_jobs_unfinished_created_at",
            "created_at",
            "id",
            sqlite_where=_UNFINISHED,
            postgresql_where=_UNFINISHED,
        ),
        Index("ix_jobs_org_id_kind_created_at_id", "org_id", "kind", "created_at", "id"),
    )

    id: str = Field(sa_column=Column(String(40), primary_key=True))
    org_id: str = Field(sa_column=Column(String(64), ForeignKey("orgs.id"), nullable=False))
    kind: str = Field(sa_column=Column(String(20), nullable=False))
    state: str = Field(sa_column=Column(String(10), nullable=False))
    created_at: datetime = _utc()
    started_at: datetime | None = _utc(nullable=True)
    finished_at: datetime | None = _utc(nullable=True)
    lease_until: datetime | None = _utc(nullable=True)
    attempts: int = Field(sa_column=Column(Integer, nullable=False))
    rows_done: int = Field(sa_column=Column(Integer, nullable=False))
    rows_total: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    cases_done: int = Field(sa_column=Column(Integer, nullable=False))
    cases_total: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    params: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    checkpoint: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    payload: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    problem: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class Source(SQLModel, table=True):
    """A source an organisation syncs from (the Standard Safeguarding Dataset): where to read
    it, how, and when. `database_url` may hold a password: it is never shown, logged or
    returned. `scheduled_for` is the last local day a scheduled sync was queued for, so one
    replica queues each day's."""

    __tablename__: ClassVar[str] = "sources"

    org_id: str = _org_fk()
    kind: str = Field(sa_column=Column(String(20), primary_key=True))
    database_url: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    schema_name: str | None = Field(default=None, sa_column=Column(String(128), nullable=True))
    path: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    settings: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    schedule: str | None = Field(default=None, sa_column=Column(String(20), nullable=True))
    scheduled_for: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    created_at: datetime = _utc()
    updated_at: datetime = _utc()


class SourceSync(SQLModel, table=True):
    """A finished sync's report: counts, row keys and refused values only."""

    __tablename__: ClassVar[str] = "source_syncs"
    __table_args__ = (Index("ix_source_syncs_org_id_created_at_id", "org_id", "created_at", "id"),)

    id: str = Field(sa_column=Column(String(40), primary_key=True))
    org_id: str = Field(sa_column=Column(String(64), ForeignKey("orgs.id"), nullable=False))
    source: str = Field(sa_column=Column(String(20), nullable=False))
    created_at: datetime = _utc()
    report: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


# The tables as SQLAlchemy Core sees them, for queries that read and write columns rather
# than objects: every query in the store names its table by one of these.
orgs = metadata.tables[Org.__tablename__]
api_keys = metadata.tables[ApiKey.__tablename__]
cases = metadata.tables[Case.__tablename__]
events = metadata.tables[Event.__tablename__]
obligations = metadata.tables[Obligation.__tablename__]
risk_periods = metadata.tables[RiskPeriod.__tablename__]
case_periods = metadata.tables[CasePeriod.__tablename__]
daily_completions = metadata.tables[DailyCompletion.__tablename__]
jobs = metadata.tables[Job.__tablename__]
subscriptions = metadata.tables[Subscription.__tablename__]
alerts = metadata.tables[Alert.__tablename__]
deliveries = metadata.tables[Delivery.__tablename__]
digests = metadata.tables[Digest.__tablename__]
delivery_attempts = metadata.tables[DeliveryAttempt.__tablename__]
imports = metadata.tables[Import.__tablename__]
sources = metadata.tables[Source.__tablename__]
source_syncs = metadata.tables[SourceSync.__tablename__]
