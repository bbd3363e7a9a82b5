"""Events in: single, batch, void; and the log out."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from service.api.deps import ClockDep, Reader, SessionDep, Writer
from service.api.openapi import json_body
from service.api.pagination import Cursor, Limit, Page, decode_instant_cursor, encode_cursor
from service.api.problems import Problem, pointer, validation_errors
from service.api.text import Text, sendable
from service.api.times import OUT_OF_RANGE, DayOrInstant, in_range, to_instant
from service.domain.events import (
    CLOCK_EVENT_TYPES,
    DATA_MAX_BYTES,
    DATA_MAX_DEPTH,
    Event,
    check_builtin_data,
    check_identifiers,
    check_storable_data,
    parse_day_or_instant,
)
from service.domain.rules import Ruleset, clock_refusal, reason_refusal
from service.store.alerts import enqueue_completed
from service.store.events import find_events
from service.store.group_commit import GroupCommitter
from service.store.ingest import ingest_events, mark_void
from service.store.orgs import lock_ruleset, ruleset_of
from service.store.statistics import analyze_grown

router = APIRouter(prefix="/v1/events", tags=["events"])
FUTURE_TOLERANCE = timedelta(minutes=5)
Location = tuple[str | int, ...]


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Text = Field(min_length=1, max_length=200, description="Idempotency key, unique per org.")
    type: Text = Field(min_length=1, max_length=64)
    case_id: Text = Field(min_length=1, max_length=200)
    occurred_at: DayOrInstant
    worker_id: Text | None = Field(default=None, min_length=1, max_length=200)
    team_id: Text | None = Field(default=None, min_length=1, max_length=200)
    data: dict[str, Any] = Field(
        default_factory=dict,
        description=f"Any JSON object, read back exactly as sent: nested at most "
        f"{DATA_MAX_DEPTH} deep (counting `data`), at most {DATA_MAX_BYTES // 1024} KiB as "
        "compact UTF-8 JSON, no NUL or unpaired surrogate in any key or text, no NaN or "
        "Infinity.",
    )


class EventOut(BaseModel):
    id: str
    type: str
    case_id: str
    occurred_at: datetime
    worker_id: str | None
    team_id: str | None
    data: dict[str, Any]
    received_at: datetime
    voided_at: datetime | None
    void_reason: str | None


class IngestResult(BaseModel):
    id: str
    status: Literal["created", "duplicate", "conflict", "invalid"]
    errors: list[dict[str, str]] | None = None


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Items stay unparsed here so one malformed item is reported as invalid, not the batch.
    events: list[Any] = Field(min_length=1, max_length=1000)
    backfill: StrictBool = Field(
        default=False,
        description="History being loaded: no alert for states reached before it was posted, "
        "one `backfill.completed` summary instead (docs/webhooks.md).",
    )


class BatchOut(BaseModel):
    results: list[IngestResult]


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Text = Field(min_length=1, max_length=1000)


def _domain_errors(item: EventIn, ruleset: Ruleset, now: datetime) -> list[tuple[Location, str]]:
    """Checks beyond the fields' types (most need the org's ruleset or the clock), by field."""
    errors: list[tuple[Location, str]] = [
        ((p.key,), p.detail) for p in check_identifiers(dict(item))
    ]
    errors += [(("data", *f.path), f.detail) for f in check_storable_data(item.data)]
    known = ruleset.known_event_types
    if item.type not in known:
        errors.append(
            (
                ("type",),
                f"unknown event type {item.type!r}; known types: {', '.join(sorted(known))}",
            )
        )
    occurred_at = to_instant(item.occurred_at, ruleset.calendar)
    if occurred_at > now + FUTURE_TOLERANCE:
        errors.append((("occurred_at",), "is more than 5 minutes in the future"))
    errors += [(("data", p.key), p.detail) for p in check_builtin_data(item.type, item.data)]
    for name, value in item.data.items():  # rules may read any of these as a due or review date
        day = parse_day_or_instant(value)
        if day is not None and not in_range(day):
            errors.append((("data", name), OUT_OF_RANGE))
    if item.type in CLOCK_EVENT_TYPES and isinstance(item.data.get("rule_id"), str):
        # What the ruleset decides is refused now; what needs the case's deadlines is judged
        # by derivation and reported on the case (docs/rules.md, Why a deadline is late).
        said = Event(item.id, item.type, item.case_id, occurred_at, data=item.data)
        for refusal in (clock_refusal(said, ruleset), reason_refusal(said, ruleset)):
            if refusal is not None:
                errors.append((("data", refusal.key), refusal.detail))
    for rule in ruleset.rules_dated_by(item.type):
        key = rule.due_from_data or ""
        if parse_day_or_instant(item.data.get(key)) is None:
            errors.append(
                (
                    ("data", key),
                    f"rule {rule.id!r} takes its due date from here: "
                    "give a date or a datetime with an offset",
                )
            )
    return errors


def _to_event(item: EventIn, ruleset: Ruleset) -> Event:
    # In UTC, so the same instant written with another offset hashes as the same content.
    return Event(
        id=item.id,
        type=item.type,
        case_id=item.case_id,
        occurred_at=to_instant(item.occurred_at, ruleset.calendar).astimezone(UTC),
        worker_id=item.worker_id,
        team_id=item.team_id,
        data=item.data,
    )


def _validate(
    raw: object, ruleset: Ruleset, now: datetime, base: Sequence[str | int]
) -> Event | list[dict[str, str]]:
    """An event, or its errors with pointers under `base`."""
    try:
        item = EventIn.model_validate(raw)
    except ValidationError as exc:
        located = validation_errors(
            [{**e, "loc": ("body", *base, *e["loc"])} for e in exc.errors()]
        )
        return located
    problems = _domain_errors(item, ruleset, now)
    if problems:
        return [{"pointer": pointer([*base, *at]), "detail": d} for at, d in problems]
    return _to_event(item, ruleset)


@router.post(
    "",
    status_code=201,
    response_model=IngestResult,
    response_model_exclude_none=True,
    responses={
        200: {"model": IngestResult, "description": "Duplicate of an event already stored"},
        409: {"description": "An event with this id exists with different content"},
    },
    openapi_extra=json_body(EventIn),
)
async def post_event(
    body: dict[str, Any],
    principal: Writer,
    clock: ClockDep,
    request: Request,
    response: Response,
) -> IngestResult:
    """Store one event; the case's obligations are re-derived before this returns."""
    ruleset = ruleset_of(principal)
    now = clock()
    checked = _validate(body, ruleset, now, ())
    if isinstance(checked, list):
        raise Problem(422, "The event is not valid; see errors.", slug="validation", errors=checked)
    committer: GroupCommitter = request.app.state.group_committer
    outcome = await committer.ingest(principal.org_id, checked, now)
    if outcome.status == "conflict":
        raise Problem(
            409,
            f"Event {checked.id!r} exists with different content; event ids "
            "are idempotency keys and events are immutable.",
            slug="conflict",
        )
    if outcome.status == "duplicate":
        response.status_code = 200
    return IngestResult(id=outcome.id, status=outcome.status)


@router.post("/batch", response_model=BatchOut, response_model_exclude_none=True)
async def post_batch(
    body: BatchIn, principal: Writer, session: SessionDep, clock: ClockDep
) -> BatchOut:
    """Store up to 1000 events; valid ones commit even when others are invalid."""
    ruleset = ruleset_of(principal)
    now = clock()
    checked = [_validate(raw, ruleset, now, ("events", i)) for i, raw in enumerate(body.events)]
    valid = [item for item in checked if isinstance(item, Event)]
    current = await lock_ruleset(session, principal.org_id)
    outcomes = iter(
        await ingest_events(session, principal.org_id, current, valid, now, backfill=body.backfill)
    )
    if body.backfill:
        await enqueue_completed(session, principal.org_id, "backfill.completed", now)
    # Batches are how histories arrive (a sync, a backfill): statistics the batch made stale
    # are gathered again before it commits (docs/operations.md, Statistics).
    await analyze_grown(session)
    results: list[IngestResult] = []
    for raw, item in zip(body.events, checked, strict=True):
        if isinstance(item, list):
            raw_id = raw.get("id") if isinstance(raw, dict) else None
            results.append(
                IngestResult(id=sendable(str(raw_id or "")), status="invalid", errors=item)
            )
        else:
            outcome = next(outcomes)
            results.append(IngestResult(id=outcome.id, status=outcome.status))
    return BatchOut(results=results)


def _event_out(row: Any) -> EventOut:
    return EventOut.model_validate(row, from_attributes=True)


# `:path` because event ids are opaque CMS references and may contain "/".
@router.post("/{event_id:path}/void", response_model=EventOut)
async def void_event(
    event_id: str, body: VoidIn, principal: Writer, session: SessionDep, clock: ClockDep
) -> EventOut:
    """Mark a mistaken event void: kept for audit, ignored by the rules from now on."""
    row = await mark_void(session, principal.org_id, event_id, body.reason, clock())
    if row is None:
        raise Problem(404, f"No event {event_id!r} in this organisation.", slug="not-found")
    return _event_out(row)


@router.get("", response_model=Page[EventOut])
async def list_events(
    principal: Reader,
    session: SessionDep,
    limit: Limit = 100,
    cursor: Cursor = None,
    case_id: str | None = None,
) -> Page[EventOut]:
    """The event log, oldest first, voided events included and marked."""
    after = decode_instant_cursor(cursor) if cursor is not None else None
    rows = await find_events(session, principal.org_id, case_id=case_id, limit=limit, after=after)
    items = [_event_out(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = items[-1]
        next_cursor = encode_cursor(last.occurred_at.isoformat(), last.id)
    return Page[EventOut](items=items, next_cursor=next_cursor)
