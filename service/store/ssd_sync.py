"""Applying a Standard Safeguarding Dataset snapshot: the difference between the events the
snapshot evidences and those earlier syncs stored, written through the ordinary write path.

Each SSD event is a unit of one row (service/imports/ssd.py): `ssd:{table}:{key}:{type}`.
A unit the organisation does not hold is added. One it holds with the same content is left
alone, so an unchanged snapshot writes nothing. One whose content changed (a date corrected,
a visit now recorded as not seen, a child re-linked) has its event voided and a new revision
added, `{unit}~2`, `~3`, ...: an event's content never changes under its id, and a row that
changes back gets a revision of its own rather than its old, voided one. A unit held but no
longer in the snapshot (the row was deleted, or slid out of the SSD's six-year window) has
its event voided. Every void is reported with the row's table and key. Events from any other
source are never touched: only ids beginning `ssd:` are compared.

A table that gave events before but is absent or empty now stops the sync before anything is
written: it is far likelier that the SSD is being rebuilt than that every row went.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.events import Event
from service.domain.rules import Ruleset
from service.imports.mapping import NotEvaluable
from service.imports.ssd import (
    ID_PREFIX,
    LOOKUP_TABLES,
    REVISION_MARK,
    TABLES,
    MappedSnapshot,
    Snapshot,
    SnapshotError,
    Table,
    revision_id,
    table_of,
    unit_of,
)
from service.store.completions import Tally
from service.store.ingest import content_hashes, ingest_events
from service.store.tables import events

# Events added or voided per transaction of the write path; a case's changes are never split.
SYNC_CHUNK = 2000
# The report lists at most this many refused values and voided events (all are counted).
MAX_LISTED = 1000
CHANGED = "changed"
GONE = "gone"
VOID_REASON = "synced from the Standard Safeguarding Dataset: its row changed or is gone"


@dataclass(frozen=True, slots=True)
class StoredUnits:
    """What the organisation holds of the SSD's units.

    `live` maps each unit with a live event to that event's (id, content hash, case).
    `revisions` gives the highest revision of the units that ever had a voided event or a
    revision above the first; every other unit held is live at its first revision. So a
    store of a million units, nearly all live and never revised, is read into one dict
    entry each, with nothing built for them beyond it.
    """

    live: dict[str, tuple[str, str, str]]
    revisions: dict[str, int]

    def revision(self, unit: str) -> int | None:
        """The unit's highest revision; None when the organisation never held it."""
        found = self.revisions.get(unit)
        if found is None and unit in self.live:
            return 1
        return found


@dataclass(frozen=True, slots=True)
class CaseChanges:
    """One case's share of a sync: events to add, and events to void."""

    case_id: str
    added: tuple[Event, ...]
    voided: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.added) + len(self.voided)


@dataclass(slots=True)
class TableTally:
    created: int = 0
    replaced: int = 0
    unchanged: int = 0
    voided: int = 0


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """A snapshot against what is stored: each case's changes in case id order, and the
    report (without its id and rules) once they are written."""

    cases: tuple[CaseChanges, ...]
    report: dict[str, Any]

    @property
    def changes(self) -> int:
        return sum(case.size for case in self.cases)

    def chunks(self) -> Iterator[list[CaseChanges]]:
        chunk: list[CaseChanges] = []
        size = 0
        for case in self.cases:
            if chunk and size + case.size > SYNC_CHUNK:
                yield chunk
                chunk, size = [], 0
            chunk.append(case)
            size += case.size
        if chunk:
            yield chunk


async def stored_units(session: AsyncSession, org_id: str) -> StoredUnits:
    """Every SSD unit the organisation holds, voided revisions included.

    An unchanged re-sync compares every unit, so this reads a million rows: the common row
    (live, first revision) costs one dict entry, and only the rest are taken apart."""
    rows = await session.execute(
        select(
            events.c.id,
            events.c.content_hash,
            events.c.case_id,
            events.c.voided_at.is_(None).label("live"),
        ).where(events.c.org_id == org_id, events.c.id.startswith(ID_PREFIX, autoescape=True))
    )
    live: dict[str, tuple[str, str, str]] = {}
    revisions: dict[str, int] = {}
    for event_id, digest, case_id, is_live in rows:
        if is_live and REVISION_MARK not in event_id:
            live[event_id] = (event_id, digest, case_id)
            continue
        unit, revision = unit_of(event_id)
        if revision > revisions.get(unit, 0):
            revisions[unit] = revision
        if is_live:
            live[unit] = (event_id, digest, case_id)
    return StoredUnits(live, revisions)


def plan_sync(snapshot: Snapshot, mapped: MappedSnapshot, stored: StoredUnits) -> SyncPlan:
    """What the snapshot changes; raises SnapshotError when a table that gave events before
    is absent or empty now."""
    for spec in TABLES:
        rows = snapshot.tables.get(spec.name)
        if rows is None or not rows.values:
            came = _live_in_table(stored, spec)
            if came:
                state = "absent" if rows is None else "empty"
                raise SnapshotError(
                    f"{spec.name} is {state}, but {came} events came from it: nothing was "
                    "applied (an SSD being rebuilt looks like this; sync again once it is done)"
                )
    tallies = {spec.name: TableTally() for spec in TABLES if spec.name not in LOOKUP_TABLES}
    added: dict[str, list[Event]] = {}
    voided: dict[str, list[str]] = {}
    listed: list[dict[str, Any]] = []
    total_voided = 0

    def void(unit: str, event_id: str, case_id: str, why: str) -> None:
        nonlocal total_voided
        voided.setdefault(case_id, []).append(event_id)
        total_voided += 1
        if len(listed) < MAX_LISTED:
            table, key = _place(unit)
            listed.append({"table": table, "key": key, "event_id": event_id, "reason": why})

    live = stored.live
    digests = content_hashes(list(mapped.events.values()))
    for (unit, event), digest in zip(mapped.events.items(), digests, strict=True):
        tally = tallies[table_of(unit)]
        held = live.get(unit)
        if held is not None and held[1] == digest:
            tally.unchanged += 1
            continue
        if held is not None:
            void(unit, held[0], held[2], CHANGED)
            tally.replaced += 1
        else:
            tally.created += 1
        revision = stored.revision(unit)
        if revision is not None:
            event = replace(event, id=revision_id(unit, revision + 1))
        added.setdefault(event.case_id, []).append(event)
    for unit, (event_id, _, case_id) in live.items():
        if unit not in mapped.events:
            void(unit, event_id, case_id, GONE)
            tallies[table_of(unit)].voided += 1
    cases = tuple(
        CaseChanges(case_id, tuple(added.get(case_id, ())), tuple(voided.get(case_id, ())))
        for case_id in sorted(added.keys() | voided.keys())
    )
    return SyncPlan(cases, _report(snapshot, mapped, tallies, listed, total_voided))


def _live_in_table(stored: StoredUnits, spec: Table) -> int:
    """How many live events came from the table."""
    prefix = f"{ID_PREFIX}{spec.short}:"
    return sum(1 for unit in stored.live if unit.startswith(prefix))


def _place(unit: str) -> tuple[str, str]:
    """A unit's table and row key."""
    _, short_and_key = unit.split(":", 1)
    key = short_and_key.split(":", 1)[1].rsplit(":", 1)[0]
    return table_of(unit), key


def _report(
    snapshot: Snapshot,
    mapped: MappedSnapshot,
    tallies: Mapping[str, TableTally],
    voided: list[dict[str, Any]],
    total_voided: int,
) -> dict[str, Any]:
    tables = []
    for spec in TABLES:
        rows = snapshot.tables.get(spec.name)
        if rows is None:
            continue
        count = mapped.counts.get(spec.name)
        tally = tallies.get(spec.name, TableTally())
        tables.append(
            {
                "table": spec.name,
                "rows": len(rows.values),
                "events": count.events if count else 0,
                "created": tally.created,
                "replaced": tally.replaced,
                "unchanged": tally.unchanged,
                "voided": tally.voided,
                "rows_rejected": count.rows_rejected if count else 0,
            }
        )
    return {
        "source": "ssd",
        "tables": tables,
        "missing_tables": [
            {"table": name, "reason": reason} for name, reason in mapped.missing.items()
        ],
        "rejected": [
            {
                "table": r.table,
                "key": r.key,
                "column": r.column,
                "value": r.value,
                "detail": r.detail,
            }
            for r in mapped.refused[:MAX_LISTED]
        ],
        "rejected_total": len(mapped.refused),
        "voided": voided,
        "voided_total": total_voided,
    }


def finished_report(
    plan_report: Mapping[str, Any],
    *,
    sync_id: str,
    taken_at: datetime,
    rules: Sequence[NotEvaluable],
) -> dict[str, Any]:
    """The report as kept: the plan's, with the sync's id and time, and the rules of the
    ruleset in force the SSD cannot judge."""
    return {
        "id": sync_id,
        **plan_report,
        "taken_at": taken_at.isoformat(),
        "rules_not_evaluable": [{"rule_id": n.rule_id, "reason": n.reason} for n in rules],
    }


def changed_anything(report: Mapping[str, Any]) -> bool:
    return any(t["created"] or t["replaced"] or t["voided"] for t in report["tables"])


async def apply_chunk(
    session: AsyncSession,
    *,
    org_id: str,
    ruleset: Ruleset,
    chunk: Sequence[CaseChanges],
    now: datetime,
    completions: Tally,
) -> None:
    """Write a chunk of cases' changes: one step of the write path, each case derived once;
    what it did to the completions rollup is counted in `completions`, for the caller to add.

    A backfill, as imports are: no alert for the states its cases reached before the sync."""
    added = [event for case in chunk for event in case.added]
    await ingest_events(
        session,
        org_id,
        ruleset,
        added,
        now,
        backfill=True,
        voids=[event_id for case in chunk for event_id in case.voided],
        void_reason=VOID_REASON,
        completions=completions,
    )
