"""The write path: store events, re-derive their cases and persist obligations, in one transaction.

Each case is locked (an upsert of its row) before its log is read, so two requests for the
same case serialise and neither derives from a log that misses the other's event. Then, in
the caller's transaction and in this order: the obligations that changed, the alerts they
now owe (store/alerts.py), each case's allocation, status and open periods
(store/case_periods.py), and last the daily completions
rollup (store/completions.py).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Row, bindparam, literal_column, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.domain.alerts import next_check_at
from service.domain.calendar import Calendar
from service.domain.derive import CaseState, Obligation, derive_case
from service.domain.events import Event
from service.domain.rules import Ruleset
from service.metrics import count_events_ingested
from service.store.alerts import Subject, enqueue_owed
from service.store.case_periods import periods_digest, replace_periods
from service.store.completions import Tally, add_to_rollup
from service.store.db import BulkInsert, DeleteEach, Prebuilt, dialect_of, each_of
from service.store.events import get_event
from service.store.jobs import queue_job
from service.store.obligations import clock_column
from service.store.orgs import lock_ruleset, set_ruleset
from service.store.tables import cases, events, obligations, risk_periods

IngestStatus = Literal["created", "duplicate", "conflict"]
Allocation = tuple[str | None, str | None, str, str | None]  # worker, team, status, periods
_CHUNK = 500
# Ids looked up a statement (a batch's stored hashes): an import's step of 2,000 events in
# one round trip, well inside SQLite's limit on parameters.
_ID_CHUNK = 5000
REDERIVE_CHUNK = 200
# A batch bringing events to this many cases or more first looks up which are new
# (`_speculate`): a step of an SSD sync holds about twenty children of a hundred events.
SPECULATE_FROM = 10
_OBLIGATION_FIELDS = tuple(c.name for c in obligations.columns if c.name not in ("org_id", "id"))


@dataclass(frozen=True, slots=True)
class Outcome:
    id: str
    status: IngestStatus


# One encoder for every hash: json.dumps with options builds a new one per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def content_hash(event: Event) -> str:
    """What "same content" means for idempotency: every field, times normalised to UTC."""
    return content_hashes([event])[0]


def content_hashes(batch: Sequence[Event]) -> list[str]:
    """Each event's content hash: the canonical JSON of `[type, case_id, occurred_at in UTC,
    worker_id, team_id, data]` (keys sorted, no spaces), hashed with SHA-256.

    The list is written out piece by piece, as the encoder would write it whole, so the
    pieces many events of a batch share (a day, a worker, the same data) are encoded once.
    """
    encode = _CANONICAL.encode
    texts: dict[object, str] = {}
    data_texts: dict[int, str] = {}
    hashes = []
    for event in batch:
        parts = []
        for value in (event.type, event.case_id, event.occurred_at, event.worker_id, event.team_id):
            text = texts.get(value)
            if text is None:
                shown = value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value
                text = texts[value] = encode(shown)
            parts.append(text)
        # Keyed by identity: the batch keeps every mapping alive while it is hashed.
        data = data_texts.get(id(event.data))
        if data is None:
            data = data_texts[id(event.data)] = encode(event.data)
        parts.append(data)
        canonical = "[" + ",".join(parts) + "]"
        hashes.append(hashlib.sha256(canonical.encode()).hexdigest())
    return hashes


def _chunks(rows: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    return (rows[i : i + size] for i in range(0, len(rows), size))


@dataclass(frozen=True, slots=True)
class LockedCases:
    """Cases locked for the rest of a transaction: each one's stored allocation and status,
    and which of them this transaction created (whose whole log it is writing)."""

    allocations: Mapping[str, Allocation]
    created: frozenset[str]


def _returning_allocations(insert: Any, dialect: str) -> Any:
    returned: list[Any] = [
        cases.c.case_id,
        cases.c.worker_id,
        cases.c.team_id,
        cases.c.status,
        cases.c.periods_digest,
    ]
    if dialect == "postgresql":  # which rows the upsert created (see `lock_cases`)
        returned.append(literal_column("xmax = 0").label("created"))
    return insert.on_conflict_do_update(
        index_elements=["org_id", "case_id"], set_={"updated_at": insert.excluded.updated_at}
    ).returning(*returned)


_LOCK_CASES = BulkInsert(
    cases,
    ("org_id", "case_id", "worker_id", "team_id", "status", "updated_at", "periods_digest"),
    _returning_allocations,
)


_EXISTING_CASES = Prebuilt(
    lambda dialect: each_of(
        dialect,
        select(cases.c.case_id).where(cases.c.org_id == bindparam("org_id")),
        cases.c.case_id,
        "case_ids",
    )
)


async def existing_cases(session: AsyncSession, org_id: str, case_ids: Sequence[str]) -> set[str]:
    """Which of these cases the organisation has a row for."""
    existing: set[str] = set()
    for chunk in _chunks(case_ids):
        found = await session.execute(
            _EXISTING_CASES(session), {"org_id": org_id, "case_ids": chunk}
        )
        existing.update(found.scalars())
    return existing


async def lock_cases(
    session: AsyncSession,
    org_id: str,
    case_ids: Iterable[str],
    now: datetime,
    initial: Mapping[str, CaseState] | None = None,
    existing: Collection[str] | None = None,
) -> LockedCases:
    """Create missing case rows and lock all of them for the rest of the transaction.

    Returns each case's stored (worker_id, team_id, status, periods digest), so
    re-derivation writes the row again only when one of them changed, and which rows the
    upsert created: their logs, obligations and periods are all this transaction's, so none
    is read back. PostgreSQL tells those (`xmax` is 0 on a row no other transaction has
    touched); SQLite's RETURNING cannot, but a writing transaction there holds the
    database's write lock from its BEGIN IMMEDIATE, so the rows missing before the upsert
    are exactly the ones it creates.

    A row created for a case in `initial` is written with that state's allocation, status
    and periods digest (see `_speculate`), so when the state proves right it is written once.
    `existing` are those of `case_ids` with a row, when this transaction has read them
    already (on SQLite under the same write lock, so still exact).
    """
    ids = sorted(set(case_ids))
    if dialect_of(session) != "sqlite":
        existing = None
    elif existing is None:
        existing = await existing_cases(session, org_id, ids)
    initial = initial or {}
    params = []
    for case_id in ids:
        state = initial.get(case_id)
        params.append(
            {
                "org_id": org_id,
                "case_id": case_id,
                "worker_id": None if state is None else state.worker_id,
                "team_id": None if state is None else state.team_id,
                "status": "open" if state is None else state.status,
                "periods_digest": None if state is None else periods_digest(state.periods),
                "updated_at": now,
            }
        )
    rows = await _LOCK_CASES.execute(session, params)
    return LockedCases(
        {r.case_id: (r.worker_id, r.team_id, r.status, r.periods_digest) for r in rows},
        frozenset(r.case_id for r in rows if r.created)
        if existing is None
        else frozenset(ids).difference(existing),
    )


def _event_row(org_id: str, event: Event, digest: str, now: datetime) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "id": event.id,
        "case_id": event.case_id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "worker_id": event.worker_id,
        "team_id": event.team_id,
        "data": dict(event.data),
        "content_hash": digest,
        "received_at": now,
    }


_INSERT_EVENTS = BulkInsert(
    events,
    [c.name for c in events.columns if c.name not in ("voided_at", "void_reason")],
    lambda insert, _dialect: insert.on_conflict_do_nothing(
        index_elements=["org_id", "id"]
    ).returning(events.c.id),
)
_STORED_HASHES = Prebuilt(
    lambda dialect: each_of(
        dialect,
        select(events.c.id, events.c.content_hash).where(events.c.org_id == bindparam("org_id")),
        events.c.id,
        "ids",
    )
)


async def store_events(
    session: AsyncSession,
    org_id: str,
    batch: Sequence[Event],
    digests: Sequence[str],
    first: Mapping[str, int],
    known: Mapping[str, str],
    now: datetime,
) -> list[Outcome]:
    """Insert new events; classify the rest as duplicates or conflicts by content.

    `digests` are the events' content hashes, `first` the index of each id's first copy in
    `batch`, and `known` the hashes of the ids already read as stored (`ingest_events`):
    those are not offered to the insert, and a duplicate of any other is read back. An id
    repeated within `batch` is judged against what is stored once its first copy has been
    handled, so a batch cannot create one id twice.
    """
    stored = dict(known)
    new = [
        _event_row(org_id, batch[i], digests[i], now)
        for event_id, i in first.items()
        if event_id not in stored
    ]
    inserted = {row.id for row in await _INSERT_EVENTS.execute(session, new)} if new else set()
    stored |= {event_id: digests[first[event_id]] for event_id in inserted}
    stored |= await _stored_hashes(session, org_id, [i for i in first if i not in stored])
    return _outcomes(batch, digests, first, inserted, stored)


def _outcomes(
    batch: Sequence[Event],
    digests: Sequence[str],
    first: Mapping[str, int],
    inserted: Collection[str],
    stored: Mapping[str, str],
) -> list[Outcome]:
    """Each event's outcome: created by its first copy, else a duplicate of what is stored
    when their content hashes agree, else a conflict."""
    outcomes = []
    for index, event in enumerate(batch):
        if event.id in inserted and first[event.id] == index:
            outcomes.append(Outcome(event.id, "created"))
        elif stored.get(event.id) == digests[index]:
            outcomes.append(Outcome(event.id, "duplicate"))
        else:
            outcomes.append(Outcome(event.id, "conflict"))
    return outcomes


async def _stored_hashes(
    session: AsyncSession, org_id: str, event_ids: Sequence[str]
) -> dict[str, str]:
    """The content hash of each of these events that is stored."""
    found: dict[str, str] = {}
    for chunk in _chunks(event_ids, _ID_CHUNK):
        rows = await session.execute(_STORED_HASHES(session), {"org_id": org_id, "ids": chunk})
        found.update({row.id: row.content_hash for row in rows})
    return found


# The columns are in the order of Event's fields, so each row builds one directly.
_CASE_LOGS = Prebuilt(
    lambda dialect: each_of(
        dialect,
        select(
            events.c.id,
            events.c.type,
            events.c.case_id,
            events.c.occurred_at,
            events.c.worker_id,
            events.c.team_id,
            events.c.data,
        ).where(events.c.org_id == bindparam("org_id"), events.c.voided_at.is_(None)),
        events.c.case_id,
        "case_ids",
    )
)


async def load_case_events(
    session: AsyncSession, org_id: str, case_ids: Sequence[str]
) -> dict[str, list[Event]]:
    """The non-void log of each case, as domain events."""
    logs: dict[str, list[Event]] = {c: [] for c in case_ids}
    for chunk in _chunks(case_ids):
        rows = await session.execute(_CASE_LOGS(session), {"org_id": org_id, "case_ids": chunk})
        for row in rows:
            event = Event(*row)
            logs[event.case_id].append(event)
    return logs


def obligation_rows(
    org_id: str, ruleset: Ruleset, states: Iterable[CaseState], now: datetime
) -> dict[str, dict[str, Any]]:
    """Each obligation's columns and their digest, by id.

    The digest hashes the columns' text, which only has to agree between processes running
    the same code: a release that changes it rewrites each obligation once, no more. The
    instants many obligations of a batch share (a day's start, a due time) are written out
    once per batch, as `content_hashes` does for events: writing an instant out costs more
    than the rest of its row.
    """
    texts: dict[datetime, str] = {}

    def iso(instant: datetime) -> str:
        text = texts.get(instant)
        if text is None:
            text = texts[instant] = instant.isoformat()
        return text

    rows = {}
    for state in states:
        for ob in state.obligations:
            row = _obligation_columns(org_id, ruleset, state, ob, now, iso)
            shown = "\x1f".join(
                [iso(value) if type(value) is datetime else repr(value) for value in row.values()]
            )
            row["digest"] = hashlib.blake2b(shown.encode(), digest_size=16).hexdigest()
            rows[ob.id] = row
    return rows


def _obligation_columns(
    org_id: str,
    ruleset: Ruleset,
    state: CaseState,
    ob: Obligation,
    now: datetime,
    iso: Callable[[datetime], str],
) -> dict[str, Any]:
    return {
        "org_id": org_id,
        "id": ob.id,
        "case_id": ob.case_id,
        "rule_id": ob.rule_id,
        "rule_name": ruleset.name_of(ob.rule_id),
        "sequence": ob.sequence,
        "opened_at": ob.opened_at,
        "due_at": ob.due_at,
        "warn_at": ob.warn_at,
        "escalate_at": [iso(t) for t in ob.escalate_at],
        "first_escalation_at": min(ob.escalate_at, default=None),
        "at_risk_periods": [
            [iso(start), iso(end) if end else None] for start, end in ob.at_risk_periods
        ],
        "met_at": ob.met_at,
        "met_at_latest": ob.met_at_latest,
        "cancelled_at": ob.cancelled_at,
        "closed_at": ob.closed_at,
        "opened_by_event": ob.opened_by_event,
        "met_by_event": ob.met_by_event,
        "cancelled_by_event": ob.cancelled_by_event,
        "worker_id": state.worker_id,
        "team_id": state.team_id,
        "next_check_at": next_check_at(ob, now),
        "original_due_at": ob.original_due_at,
        "delay_reason": ob.delay_reason.code if ob.delay_reason else None,
        "clock": clock_column(ob),
    }


_STORED_OBLIGATIONS = Prebuilt(
    lambda dialect: each_of(
        dialect,
        select(
            obligations.c.id,
            obligations.c.digest,
            obligations.c.rule_id,
            obligations.c.team_id,
            obligations.c.met_at,
            obligations.c.cancelled_at,
            obligations.c.due_at,
            obligations.c.at_risk_periods,
            obligations.c.original_due_at,
            obligations.c.delay_reason,
        ).where(obligations.c.org_id == bindparam("org_id")),
        obligations.c.case_id,
        "case_ids",
    )
)
_DELETE_OBLIGATIONS = DeleteEach(obligations, "id")
# A new obligation's id is new: it hashes its case's id, and the case's stored obligations
# were read under the case's lock. So new ones are a plain insert (by COPY when many), and
# only changed ones an upsert that conflicts on the id.
_INSERT_OBLIGATIONS = BulkInsert(obligations, [c.name for c in obligations.columns])
_UPDATE_OBLIGATIONS = BulkInsert(
    obligations,
    [c.name for c in obligations.columns],
    lambda insert, _dialect: insert.on_conflict_do_update(
        index_elements=["org_id", "id"],
        set_={name: insert.excluded[name] for name in _OBLIGATION_FIELDS},
    ),
)
_DELETE_RISK_PERIODS = DeleteEach(risk_periods, "obligation_id")
_INSERT_RISK_PERIODS = BulkInsert(risk_periods, ("org_id", "obligation_id", "starts_at", "ends_at"))


async def _replace_obligations(
    session: AsyncSession,
    org_id: str,
    calendar: Calendar,
    case_ids: Sequence[str],
    created: frozenset[str],
    wanted: dict[str, dict[str, Any]],
    completions: Tally,
) -> set[str]:
    """Write only the difference between stored and derived obligations; the ids written.

    Cases created in this transaction have nothing stored yet, so they are not looked up.
    What the difference does to the daily completions rollup is counted in `completions`.
    """
    stored: dict[str, Mapping[str, Any]] = {}
    for chunk in _chunks([c for c in case_ids if c not in created]):
        rows = await session.execute(
            _STORED_OBLIGATIONS(session), {"org_id": org_id, "case_ids": chunk}
        )
        stored.update({row.id: row._mapping for row in rows})
    gone = [i for i in stored if i not in wanted]
    new = [row for i, row in wanted.items() if i not in stored]
    changed = [
        row for i, row in wanted.items() if i in stored and stored[i]["digest"] != row["digest"]
    ]
    for i in (*gone, *(row["id"] for row in changed)):
        completions.count(org_id, calendar, stored[i], sign=-1)
    for row in (*new, *changed):
        completions.count(org_id, calendar, row)
    await _DELETE_OBLIGATIONS.execute(session, org_id, gone)
    if new:
        await _INSERT_OBLIGATIONS.execute(session, new)
    for chunk in _chunks(changed):
        await _UPDATE_OBLIGATIONS.execute(session, chunk)
    stale = [i for i in (*gone, *(r["id"] for r in changed)) if stored[i]["at_risk_periods"]]
    await _replace_risk_periods(session, org_id, stale, [*new, *changed])
    return {row["id"] for row in (*new, *changed)}


async def _replace_risk_periods(
    session: AsyncSession, org_id: str, stale: Sequence[str], rows: Sequence[dict[str, Any]]
) -> None:
    """Replace the periods of the obligations in `stale` (those that had any) with `rows`'."""
    await _DELETE_RISK_PERIODS.execute(session, org_id, stale)
    periods = [
        {
            "org_id": org_id,
            "obligation_id": row["id"],
            "starts_at": datetime.fromisoformat(start),
            "ends_at": datetime.fromisoformat(end) if end else None,
        }
        for row in rows
        for start, end in row["at_risk_periods"]
    ]
    if periods:
        await _INSERT_RISK_PERIODS.execute(session, periods)


_UPDATE_CASE = (
    update(cases)
    .where(cases.c.org_id == bindparam("b_org"), cases.c.case_id == bindparam("b_case"))
    .values(
        worker_id=bindparam("worker_id"),
        team_id=bindparam("team_id"),
        status=bindparam("status"),
        periods_digest=bindparam("periods_digest"),
    )
)


async def rederive_cases(
    session: AsyncSession,
    org_id: str,
    ruleset: Ruleset,
    locked: LockedCases,
    now: datetime,
    completions: Tally,
    stored: Sequence[Event] = (),
    *,
    backfill: bool = False,
    speculated: Mapping[str, Speculation] | None = None,
) -> list[CaseState]:
    """Re-derive cases locked by `lock_cases` and persist allocation, status and obligations.

    `stored` are the events this transaction inserted: for a case it created they are the
    whole log, so only the other cases' logs are read back, and a state `speculated` from
    exactly that log is the case's state. What the new obligations do to the daily
    completions rollup is counted in `completions`, for the caller to add last.
    """
    ordered = sorted(locked.allocations)
    logs: dict[str, list[Event]] = {case_id: [] for case_id in locked.created}
    for event in stored:
        if event.case_id in locked.created:
            logs[event.case_id].append(event)
    logs |= await load_case_events(session, org_id, [c for c in ordered if c not in logs])
    guesses = speculated or {}
    states = []
    for case_id in ordered:
        guess = guesses.get(case_id)
        if (
            guess is not None
            and case_id in locked.created
            and guess.event_ids == tuple(e.id for e in logs[case_id])
        ):
            states.append(guess.state)
        else:
            states.append(derive_case(case_id, logs[case_id], ruleset))
    wanted = obligation_rows(org_id, ruleset, states, now)
    written = await _replace_obligations(
        session, org_id, ruleset.calendar, ordered, locked.created, wanted, completions
    )
    # An unchanged row was checked already: its stored next check is still ahead of `now`.
    await enqueue_owed(
        session,
        org_id,
        ruleset,
        (
            Subject(ob, wanted[ob.id]["rule_name"], state.worker_id, state.team_id)
            for state in states
            for ob in state.obligations
            if ob.id in written
        ),
        now,
        settles=True,
        silenced=backfill,
    )
    digests = {s.case_id: periods_digest(s.periods) for s in states}
    moved = [
        s
        for s in states
        if locked.allocations[s.case_id] != (s.worker_id, s.team_id, s.status, digests[s.case_id])
    ]
    await replace_periods(
        session,
        org_id,
        [
            s
            for s in states
            if s.case_id in locked.created or locked.allocations[s.case_id][3] != digests[s.case_id]
        ],
        locked.created,
    )
    if moved:
        await session.execute(
            _UPDATE_CASE,
            [
                {
                    "b_org": org_id,
                    "b_case": s.case_id,
                    "worker_id": s.worker_id,
                    "team_id": s.team_id,
                    "status": s.status,
                    "periods_digest": digests[s.case_id],
                }
                for s in moved
            ],
        )
    return states


async def ingest_events(
    session: AsyncSession,
    org_id: str,
    ruleset: Ruleset,
    batch: Sequence[Event],
    now: datetime,
    *,
    backfill: bool = False,
    voids: Sequence[str] = (),
    void_reason: str = "",
    completions: Tally | None = None,
) -> list[Outcome]:
    """Store events idempotently, re-derive every case that gained one, and add what that
    did to the daily completions rollup, last; or, given `completions`, count it there for
    the caller to add (a job's steps add theirs in order: `_Step.in_order` in
    service/jobs/background.py).

    A backfill raises no alert for the states its cases reached before it was posted (the
    caller raises one summary instead); states reached later alert as usual. `voids` are
    events marked void in the same step (a snapshot's rows that changed or vanished), so a
    case losing one event and gaining its replacement is derived once, from both."""
    if not batch and not voids:
        return []
    digests = content_hashes(batch)
    first: dict[str, int] = {}
    for index, event in enumerate(batch):
        first.setdefault(event.id, index)
    # A batch of several events first reads which of its ids are stored: reading an id's
    # hash costs a fraction of offering its row to the insert, and a case none of whose
    # events is new needs neither a lock nor a derivation (a re-import is all duplicates).
    # A single event is simply offered, and a duplicate of it read back.
    known = await _stored_hashes(session, org_id, list(first)) if len(first) > 1 else {}
    fresh = {batch[i].case_id for event_id, i in first.items() if event_id not in known}
    voided_cases = await _cases_of(session, org_id, voids)
    if not fresh and not voided_cases:
        return _outcomes(batch, digests, first, (), known)
    touching = sorted({*fresh, *voided_cases})
    # Which cases have a row, read once: a guess needs it, and so does SQLite's lock_cases.
    existing = (
        await existing_cases(session, org_id, touching)
        if len(fresh) >= SPECULATE_FROM or dialect_of(session) == "sqlite"
        else None
    )
    speculated = _speculate(ruleset, batch, first, known, fresh, existing)
    locked = await lock_cases(
        session,
        org_id,
        touching,
        now,
        {case_id: guess.state for case_id, guess in speculated.items()},
        existing,
    )
    voided = await _void_events(session, org_id, voids, void_reason, now)
    outcomes = await store_events(session, org_id, batch, digests, first, known, now)
    stored = [e for e, o in zip(batch, outcomes, strict=True) if o.status == "created"]
    count_events_ingested(session, len(stored))
    touched = {e.case_id for e in stored} | voided
    if touched:
        only = LockedCases({c: locked.allocations[c] for c in touched}, locked.created & touched)
        tally = Tally() if completions is None else completions
        await rederive_cases(
            session,
            org_id,
            ruleset,
            only,
            now,
            tally,
            stored,
            backfill=backfill,
            speculated=speculated,
        )
        if completions is None:
            await add_to_rollup(session, tally)
    return outcomes


@dataclass(frozen=True, slots=True)
class Speculation:
    """A new case's state derived from the events a batch brings it, before any is stored."""

    event_ids: tuple[str, ...]
    state: CaseState


def _speculate(
    ruleset: Ruleset,
    batch: Sequence[Event],
    first: Mapping[str, int],
    known: Mapping[str, str],
    fresh: Collection[str],
    existing: Collection[str] | None,
) -> dict[str, Speculation]:
    """The states of the batch's cases that have no row yet, derived from the batch's new
    events: a case created by this transaction has no other log, so its row is written once,
    with its allocation, status and periods, rather than created and then updated. When
    another transaction created the case meanwhile, or an event turned out to be stored
    already, the guess goes unused and the case is derived from its log as any other.

    Only for batches of many cases, given which of them have a row (`existing`): one case
    more is cheaper read than guessed.
    """
    if len(fresh) < SPECULATE_FROM or existing is None:
        return {}
    logs: dict[str, list[Event]] = {case_id: [] for case_id in fresh if case_id not in existing}
    for event_id, index in first.items():
        event = batch[index]
        log = logs.get(event.case_id)
        if log is not None and event_id not in known:
            log.append(event)
    return {
        case_id: Speculation(tuple(e.id for e in log), derive_case(case_id, log, ruleset))
        for case_id, log in logs.items()
    }


async def _cases_of(session: AsyncSession, org_id: str, event_ids: Sequence[str]) -> set[str]:
    """The cases of these events, to lock before any of them is voided."""
    found: set[str] = set()
    for chunk in _chunks(event_ids):
        rows = await session.execute(
            select(events.c.case_id).where(events.c.org_id == org_id, events.c.id.in_(chunk))
        )
        found.update(rows.scalars())
    return found


async def _void_events(
    session: AsyncSession, org_id: str, event_ids: Sequence[str], reason: str, now: datetime
) -> set[str]:
    """Mark these events void (those void already keep their first reason); the cases of
    those this voided."""
    voided: set[str] = set()
    for chunk in _chunks(event_ids):
        rows = await session.execute(
            update(events)
            .where(events.c.org_id == org_id, events.c.id.in_(chunk), events.c.voided_at.is_(None))
            .values(voided_at=now, void_reason=reason)
            .returning(events.c.case_id)
        )
        voided.update(rows.scalars())
    return voided


async def mark_void(
    session: AsyncSession, org_id: str, event_id: str, reason: str, now: datetime
) -> Row[Any] | None:
    """Mark a mistaken event void and re-derive its case: the event as now stored, or None
    when the organisation has no such event. An event voided already keeps its first reason.

    The ruleset is read under the org row's share lock, as for every write that derives.
    """
    ruleset = await lock_ruleset(session, org_id)
    case_id = (
        await session.execute(
            select(events.c.case_id).where(events.c.org_id == org_id, events.c.id == event_id)
        )
    ).scalar_one_or_none()
    if case_id is None:
        return None
    locked = await lock_cases(session, org_id, [case_id], now)
    voided = await session.execute(
        update(events)
        .where(events.c.org_id == org_id, events.c.id == event_id, events.c.voided_at.is_(None))
        .values(voided_at=now, void_reason=reason)
    )
    if voided.rowcount:  # type: ignore[attr-defined]
        completions = Tally()
        await rederive_cases(session, org_id, ruleset, locked, now, completions)
        await add_to_rollup(session, completions)
    return await get_event(session, org_id, event_id)


async def rederive_open_cases(
    session: AsyncSession, org_id: str, ruleset: Ruleset, now: datetime
) -> int:
    """Re-derive every open case under `ruleset` (new rules, or new calendar data), then add
    what that did to the completions rollup, last; how many cases were re-derived."""
    completions = Tally()
    count = await _rederive_open_cases(session, org_id, ruleset, now, completions)
    await add_to_rollup(session, completions)
    return count


async def activate_ruleset(
    session: AsyncSession,
    *,
    org_id: str,
    ruleset: Ruleset,
    text: str | None,
    fmt: Literal["toml", "json"],
    now: datetime,
    activation_id: str,
) -> None:
    """Make `ruleset` the organisation's active one (`text` None for a built-in) and queue the
    re-derivation of every open case under it (service/jobs/background.py), which commits a
    chunk of cases at a time.

    A new timezone moves every completion's local day, so the job then counts the completions
    rollup again at its end rather than adding to it.
    """
    previous = await set_ruleset(session, org_id=org_id, ruleset_id=ruleset.id, text=text, fmt=fmt)
    moved = previous.calendar.timezone.key != ruleset.calendar.timezone.key
    await queue_job(
        session,
        job_id=activation_id,
        org_id=org_id,
        kind="rules-activation",
        now=now,
        params={"now": now.isoformat(), "rebuild_rollup": moved},
    )


async def open_cases_after(
    session: AsyncSession, org_id: str, after: str | None, limit: int | None
) -> list[str]:
    """Open cases in id order, after `after` when given: a re-derivation of every open case
    walks them a chunk at a time."""
    query = select(cases.c.case_id).where(cases.c.org_id == org_id, cases.c.status == "open")
    if after is not None:
        query = query.where(cases.c.case_id > after)
    return list((await session.execute(query.order_by(cases.c.case_id).limit(limit))).scalars())


async def rederive_chunk(
    session: AsyncSession,
    org_id: str,
    ruleset: Ruleset,
    case_ids: Sequence[str],
    now: datetime,
    completions: Tally,
) -> None:
    """Lock and re-derive these cases, counting what that does to the rollup in `completions`."""
    locked = await lock_cases(session, org_id, case_ids, now)
    await rederive_cases(session, org_id, ruleset, locked, now, completions)


async def _rederive_open_cases(
    session: AsyncSession, org_id: str, ruleset: Ruleset, now: datetime, completions: Tally
) -> int:
    """Re-derive every open case a chunk at a time, counting into `completions`, which the
    caller adds once every case is done: it never holds a rollup row while waiting for the
    next chunk's case locks."""
    case_ids = await open_cases_after(session, org_id, None, None)
    for start in range(0, len(case_ids), REDERIVE_CHUNK):
        chunk = case_ids[start : start + REDERIVE_CHUNK]
        await rederive_chunk(session, org_id, ruleset, chunk, now, completions)
    return len(case_ids)
