"""Sources an organisation syncs from (the Standard Safeguarding Dataset): where each is read,
when it syncs, the syncs queued as jobs, and their kept reports.

A database URL may carry a password. It is kept here for the sync to connect with, and is
never returned: `SsdSource.shown_url` hides it, and nothing logs the URL itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.calendar import Calendar
from service.imports.ssd import (
    DEFAULT_ROLE_CODES,
    DEFAULT_SCHEMA,
    DEFAULT_WORKER_KEY,
    SOURCE,
    WORKER_KEYS,
)
from service.store.ids import sortable_id
from service.store.jobs import UNFINISHED, Claim, JobKind, JobStatus, get_job, queue_job
from service.store.tables import jobs, source_syncs, sources

SYNC_KIND: JobKind = "ssd-sync"
# Nightly by default, after the authority's own overnight rebuild of its SSD.
DEFAULT_SCHEDULE = "05:00"
_SCHEDULE = re.compile(r"([0-9]{2}):([0-9]{2})", re.ASCII)
_SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,127}", re.ASCII)
HIDDEN = "***"


class SourceInvalid(ValueError):
    """A source setting that cannot be used; the message names the setting and why."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field} {detail}")
        self.field = field
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SsdSource:
    """An organisation's SSD: a database (read-only URL and schema) or a folder or zip of
    one CSV per table; the involvement roles that allocate a case; which professional id
    names a worker; and the local time of day it syncs (None: only when asked)."""

    org_id: str
    database_url: str | None
    schema: str
    path: str | None
    role_codes: tuple[str, ...] = DEFAULT_ROLE_CODES
    worker_key: str = DEFAULT_WORKER_KEY
    schedule: str | None = DEFAULT_SCHEDULE

    @property
    def shown_url(self) -> str | None:
        """The URL with its password hidden: all that is ever shown of it."""
        return None if self.database_url is None else hide_password(self.database_url)

    @property
    def secret(self) -> str | None:
        """The URL's password, to scrub from any message a driver writes."""
        if self.database_url is None:
            return None
        return make_url(self.database_url).password

    def to_json(self) -> dict[str, Any]:
        """The source as shown: never the password."""
        return {
            "database_url": self.shown_url,
            "schema": self.schema if self.database_url is not None else None,
            "path": self.path,
            "role_codes": list(self.role_codes),
            "worker_key": self.worker_key,
            "schedule": self.schedule,
        }


def hide_password(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def scrub(text: str, secret: str | None) -> str:
    """A message with the secret taken out, wherever a driver may have put it."""
    return text.replace(secret, HIDDEN) if secret else text


def check_source(source: SsdSource) -> SsdSource:
    """The source as given, checked; raises SourceInvalid naming the setting at fault."""
    if (source.database_url is None) == (source.path is None):
        raise SourceInvalid("database_url", "or path: give one of them, not both")
    if source.database_url is not None:
        try:
            url = make_url(source.database_url)
        except ArgumentError as exc:
            raise SourceInvalid("database_url", "is not a database URL") from exc
        backend = url.get_backend_name()
        if backend not in ("postgresql", "mssql"):
            raise SourceInvalid(
                "database_url",
                "must be a PostgreSQL (postgresql://) or SQL Server (mssql+pyodbc://) URL",
            )
        if _SCHEMA_NAME.fullmatch(source.schema) is None:
            raise SourceInvalid("schema", "must be a plain schema name (letters, digits, _)")
    if not source.role_codes or any(not code.strip() for code in source.role_codes):
        raise SourceInvalid("role_codes", "must name at least one role, none blank")
    if source.worker_key not in WORKER_KEYS:
        raise SourceInvalid("worker_key", f"must be one of: {', '.join(WORKER_KEYS)}")
    if source.schedule is not None:
        found = _SCHEDULE.fullmatch(source.schedule)
        if found is None or int(found[1]) > 23 or int(found[2]) > 59:
            raise SourceInvalid("schedule", 'must be a local time of day, "HH:MM", or null')
    return replace(source, role_codes=tuple(code.strip() for code in source.role_codes))


async def set_ssd_source(session: AsyncSession, source: SsdSource, now: datetime) -> None:
    """Configure (or reconfigure) the organisation's SSD."""
    values = {
        "database_url": source.database_url,
        "schema_name": source.schema if source.database_url is not None else None,
        "path": source.path,
        "settings": {"role_codes": list(source.role_codes), "worker_key": source.worker_key},
        "schedule": source.schedule,
        "updated_at": now,
    }
    changed = await session.execute(
        update(sources)
        .where(sources.c.org_id == source.org_id, sources.c.kind == SOURCE)
        .values(**values)
    )
    if not changed.rowcount:  # type: ignore[attr-defined]
        await session.execute(
            sources.insert().values(org_id=source.org_id, kind=SOURCE, created_at=now, **values)
        )


async def get_ssd_source(session: AsyncSession, org_id: str) -> SsdSource | None:
    row = (
        await session.execute(
            select(sources).where(sources.c.org_id == org_id, sources.c.kind == SOURCE)
        )
    ).one_or_none()
    return None if row is None else _source(row)


def _source(row: Any) -> SsdSource:
    return SsdSource(
        org_id=row.org_id,
        database_url=row.database_url,
        schema=row.schema_name or DEFAULT_SCHEMA,
        path=row.path,
        role_codes=tuple(row.settings.get("role_codes", DEFAULT_ROLE_CODES)),
        worker_key=row.settings.get("worker_key", DEFAULT_WORKER_KEY),
        schedule=row.schedule,
    )


async def delete_ssd_source(session: AsyncSession, org_id: str) -> bool:
    """Forget the source (its events stay, as any others); False when there was none."""
    deleted = await session.execute(
        sources.delete().where(sources.c.org_id == org_id, sources.c.kind == SOURCE)
    )
    return bool(deleted.rowcount)  # type: ignore[attr-defined]


async def queue_sync(
    session: AsyncSession, *, org_id: str, now: datetime, claimed_until: datetime | None = None
) -> tuple[Claim, bool]:
    """Queue a sync of the organisation's SSD, unless one is queued or running already:
    that one, and whether it is new. With `claimed_until` the caller runs it (the command)."""
    unfinished = (
        await session.execute(
            select(jobs.c.id)
            .where(jobs.c.org_id == org_id, jobs.c.kind == SYNC_KIND, jobs.c.state.in_(UNFINISHED))
            .order_by(jobs.c.created_at)
            .limit(1)
        )
    ).scalar_one_or_none()
    if unfinished is not None:
        return Claim(unfinished, org_id, SYNC_KIND, 0, {}, None), False
    claim = await queue_job(
        session,
        job_id=sortable_id("sync_"),
        org_id=org_id,
        kind=SYNC_KIND,
        now=now,
        params={"now": now.isoformat()},
        claimed_until=claimed_until,
    )
    return claim, True


def scheduled_day(schedule: str, calendar: Calendar, now: datetime) -> date | None:
    """The latest local day whose sync time has come by `now` (today's, else yesterday's):
    each day's sync is queued once, and one missed while the service was down goes late."""
    found = _SCHEDULE.fullmatch(schedule)
    if found is None:
        return None
    at = time(int(found[1]), int(found[2]))
    today = calendar.local_date(now)
    starts = datetime.combine(today, at, tzinfo=calendar.timezone)
    return today if starts <= now else date.fromordinal(today.toordinal() - 1)


async def scheduled_sources(session: AsyncSession) -> list[tuple[str, str, date | None]]:
    """Every scheduled SSD: organisation, schedule and the last day queued."""
    rows = await session.execute(
        select(sources.c.org_id, sources.c.schedule, sources.c.scheduled_for).where(
            sources.c.kind == SOURCE, sources.c.schedule.is_not(None)
        )
    )
    return [(row.org_id, row.schedule, row.scheduled_for) for row in rows]


async def claim_scheduled_day(session: AsyncSession, org_id: str, day: date) -> bool:
    """Mark `day`'s scheduled sync as queued; False when another replica did first."""
    claimed = await session.execute(
        update(sources)
        .where(
            sources.c.org_id == org_id,
            sources.c.kind == SOURCE,
            or_(sources.c.scheduled_for.is_(None), sources.c.scheduled_for < day),
        )
        .values(scheduled_for=day)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


async def keep_sync_report(
    session: AsyncSession, *, sync_id: str, org_id: str, report: dict[str, Any], now: datetime
) -> None:
    await session.execute(
        source_syncs.insert().values(
            id=sync_id, org_id=org_id, source=SOURCE, created_at=now, report=report
        )
    )


async def sync_status(session: AsyncSession, org_id: str, sync_id: str) -> dict[str, Any] | None:
    """A sync as a person polling it sees it: state, progress, and the report once done."""
    job = await get_job(session, org_id, sync_id, (SYNC_KIND,))
    if job is None:
        return None
    report = None
    if job.state == "done":
        report = (
            await session.execute(
                select(source_syncs.c.report).where(
                    source_syncs.c.org_id == org_id, source_syncs.c.id == sync_id
                )
            )
        ).scalar_one_or_none()
    return _status(job, report)


def _status(job: JobStatus, report: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": job.id,
        "source": SOURCE,
        "state": job.state,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "progress": {
            "rows_done": job.rows_done,
            "rows_total": job.rows_total,
            "cases_done": job.cases_done,
            "cases_total": job.cases_total,
        },
        "report": report,
        "problem": job.problem,
    }


async def list_sync_reports(
    session: AsyncSession, org_id: str, *, limit: int, after: tuple[datetime, str] | None
) -> list[dict[str, Any]]:
    """Kept sync reports, newest first; `after` is the (created_at, id) of the last one seen."""
    t = source_syncs.c
    query = select(t.created_at, t.id, t.report).where(t.org_id == org_id)
    if after is not None:
        at, after_id = after
        query = query.where(or_(t.created_at < at, and_(t.created_at == at, t.id < after_id)))
    rows = await session.execute(query.order_by(t.created_at.desc(), t.id.desc()).limit(limit))
    return [{"created_at": row.created_at, **row.report} for row in rows]
