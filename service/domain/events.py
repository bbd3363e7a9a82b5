"""The event vocabulary: what a case-management system can tell caseclock."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from service.domain.calendar import BANK_HOLIDAYS_KNOWN_UNTIL, Duration
from service.domain.storable import MAX_DEPTH, Unstorable, json_faults

BUILTIN_EVENT_TYPES: frozenset[str] = frozenset(
    {
        "referral_received",
        "referral_decision_made",
        "contact_made",
        "child_seen",
        "assessment_started",
        "assessment_completed",
        "strategy_discussion_held",
        "section47_started",
        "section47_completed",
        "icpc_held",
        "child_protection_plan_started",
        "child_protection_plan_ended",
        "core_group_held",
        "cp_review_held",
        "child_visited",
        "became_looked_after",
        "ceased_looked_after",
        "placement_started",
        "cla_review_held",
        "pathway_plan_agreed",
        "pathway_plan_reviewed",
        "care_plan_agreed",
        "care_plan_reviewed",
        "safeguarding_concern_received",
        "s42_decision_made",
        "review_scheduled",
        "task_due",
        "task_completed",
        "case_allocated",
        "case_closed",
        "case_reopened",
        "delay_reason_recorded",
        "deadline_extended",
        "deadline_paused",
        "deadline_resumed",
    }
)

# Events about one deadline's clock rather than the case's work (docs/rules.md, Why a deadline
# is late): each names the deadline by `data.rule_id` (and `data.sequence`).
REASON_RECORDED = "delay_reason_recorded"
EXTENDED = "deadline_extended"
PAUSED = "deadline_paused"
RESUMED = "deadline_resumed"
CLOCK_EVENT_TYPES = (REASON_RECORDED, EXTENDED, PAUSED, RESUMED)
# A note says what a reason code cannot, in a line or two: a reason is not a case record.
NOTE_MAX_CHARS = 500

_PLAIN_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

REFERRAL_OUTCOMES = ("assessment", "strategy_discussion", "early_help", "no_further_action")
SECTION47_OUTCOMES = ("conference", "no_conference")


@dataclass(frozen=True, slots=True)
class Event:
    """An immutable fact about a case; `occurred_at` is aware UTC."""

    id: str
    type: str
    case_id: str
    occurred_at: datetime
    worker_id: str | None = None
    team_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DataProblem:
    """One thing wrong with an event's `data`, located by its key."""

    key: str
    detail: str


IDENTIFIER_FIELDS = ("id", "case_id", "worker_id", "team_id")
DATA_MAX_DEPTH = MAX_DEPTH
DATA_MAX_BYTES = 64 * 1024


def check_storable_data(data: Mapping[str, Any]) -> list[Unstorable]:
    """Refuse `data` that would not read back exactly as sent (see storable.py), or that is
    nested more than DATA_MAX_DEPTH deep or over DATA_MAX_BYTES as compact UTF-8 JSON.

    `data` holds the facts rules read (outcomes, dates, task ids), not documents; the bound
    keeps every read of a case, and the case page, quick.
    """
    faults = list(json_faults(data, DATA_MAX_DEPTH))
    if faults:
        return faults
    size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
    if size > DATA_MAX_BYTES:
        limit = f"at most {DATA_MAX_BYTES} ({DATA_MAX_BYTES // 1024} KiB)"
        return [Unstorable((), f"is {size} bytes as JSON; {limit}")]
    return []


def _identifier_fault(value: str) -> str | None:
    if not value.strip():
        return "must not be empty or only spaces"
    if any(unicodedata.category(c) == "Cc" for c in value):
        return "must not hold control characters (tabs, line breaks and the like)"
    return None


def check_identifiers(fields: Mapping[str, object]) -> list[DataProblem]:
    """Refuse an event's identifiers that are empty, only spaces (any Unicode space), or
    hold control characters.

    Identifiers are opaque and kept exactly as sent, spaces included; but one with nothing
    else in it names no case, worker or team anyone could find again, and a control
    character is never part of a real id: derived obligation ids join case, rule and event
    ids with one (`derive.obligation_id`), so only ids without them keep those apart.
    """
    return [
        DataProblem(name, fault)
        for name in IDENTIFIER_FIELDS
        if isinstance(value := fields.get(name), str)
        and (fault := _identifier_fault(value)) is not None
    ]


def parse_plain_date(text: str) -> date | None:
    """A day written YYYY-MM-DD, or None: fromisoformat alone would also take week dates
    such as 2026-W45-1."""
    if _PLAIN_DATE.fullmatch(text) is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_day_or_instant(value: object) -> date | datetime | None:
    """Read a data value that may be a plain date or an RFC 3339 datetime with an offset.

    Returns None for anything else, including naive datetimes, which are ambiguous.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) == 10:
        return parse_plain_date(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _require_choice(
    data: Mapping[str, Any], key: str, choices: tuple[str, ...]
) -> list[DataProblem]:
    if data.get(key) not in choices:
        return [DataProblem(key, f"must be one of: {', '.join(choices)}")]
    return []


def _require_text(data: Mapping[str, Any], key: str) -> list[DataProblem]:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        return [DataProblem(key, "is required and must be a non-empty string")]
    return []


def _optional_flag(data: Mapping[str, Any], key: str) -> list[DataProblem]:
    """A yes/no a rule matches on: `1` or `"true"` would silently match nothing."""
    if key in data and not isinstance(data[key], bool):
        return [DataProblem(key, "must be true or false")]
    return []


def _require_day(data: Mapping[str, Any], key: str) -> list[DataProblem]:
    if parse_day_or_instant(data.get(key)) is None:
        return [DataProblem(key, "must be a date (YYYY-MM-DD) or a datetime with an offset")]
    return []


def _optional_text(data: Mapping[str, Any], key: str, most: int) -> list[DataProblem]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, str) or not value.strip():
        return [DataProblem(key, "must be a non-empty string when given")]
    if len(value) > most:
        return [DataProblem(key, f"is {len(value)} characters; at most {most}")]
    return []


def target_sequence(data: Mapping[str, Any]) -> int | None:
    """The chain position a clock event names in `data.sequence` (an integer from 1), if any."""
    value = data.get("sequence")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None


def _check_clock_fields(event_type: str, data: Mapping[str, Any]) -> list[DataProblem]:
    """The fields of an event about a deadline's clock that need no ruleset to judge."""
    problems = _require_text(data, "rule_id") + _optional_text(data, "note", NOTE_MAX_CHARS)
    if "sequence" in data and target_sequence(data) is None:
        problems.append(DataProblem("sequence", "must be an integer from 1 (the chain position)"))
    if event_type in (REASON_RECORDED, EXTENDED):
        problems += _require_text(data, "reason")
    elif event_type == PAUSED:
        problems += _optional_text(data, "reason", 64)
    if event_type == EXTENDED:
        problems += _require_text(data, "authorised_by")
        problems += _optional_text(data, "authorised_by", 200)
        problems += _agreed_due(data)
    return problems


def _agreed_due(data: Mapping[str, Any]) -> list[DataProblem]:
    """An extension gives its agreed due day (`due_on`) or how far it moves (`extend_by`)."""
    if ("due_on" in data) == ("extend_by" in data):
        return [DataProblem("due_on", "give either due_on (a date) or extend_by (a duration)")]
    if "due_on" in data:
        value = data["due_on"]
        if not isinstance(value, str) or parse_plain_date(value.strip()) is None:
            return [DataProblem("due_on", "must be a date (YYYY-MM-DD)")]
        return []
    try:
        Duration.parse(str(data["extend_by"]))
    except ValueError as exc:
        return [DataProblem("extend_by", str(exc))]
    return []


def check_builtin_data(event_type: str, data: Mapping[str, Any]) -> list[DataProblem]:
    """Check the `data` fields built-in rules depend on, so no rule meets a malformed fact, and
    that no date in it is one the working-day calendar cannot count from."""
    return _check_builtin_fields(event_type, data) + _dates_past_horizon(data)


_PAST_HORIZON = (
    f"is after {BANK_HOLIDAYS_KNOWN_UNTIL:%d %B %Y}, "
    "the last day the working-day calendar knows bank holidays for"
)


_HORIZON_ENDS = datetime.combine(BANK_HOLIDAYS_KNOWN_UNTIL, time.max, tzinfo=UTC)


def _past_horizon(value: date | datetime) -> bool:
    if isinstance(value, datetime):
        return value > _HORIZON_ENDS  # compared, not converted: year 9999 may not convert
    return value > BANK_HOLIDAYS_KNOWN_UNTIL


def _dates_past_horizon(data: Mapping[str, Any]) -> list[DataProblem]:
    """Any data value may be a rule's due or review date (`from:data.<key>`), so every date is
    checked; an instant by its UTC date."""
    return [
        DataProblem(key, _PAST_HORIZON)
        for key, value in data.items()
        if (day := parse_day_or_instant(value)) is not None and _past_horizon(day)
    ]


def _check_builtin_fields(event_type: str, data: Mapping[str, Any]) -> list[DataProblem]:
    if event_type == "referral_decision_made":
        return _require_choice(data, "outcome", REFERRAL_OUTCOMES)
    if event_type == "section47_completed":
        return _require_choice(data, "outcome", SECTION47_OUTCOMES)
    if event_type == "icpc_held":
        return _optional_flag(data, "plan")
    if event_type == "placement_started":
        return _optional_flag(data, "long_term")
    if event_type == "review_scheduled":
        return _require_text(data, "review") + _require_day(data, "scheduled_for")
    if event_type == "task_due":
        return _require_text(data, "task_id") + _require_day(data, "due_at")
    if event_type == "task_completed":
        return _require_text(data, "task_id")
    if event_type in CLOCK_EVENT_TYPES:
        return _check_clock_fields(event_type, data)
    return []
