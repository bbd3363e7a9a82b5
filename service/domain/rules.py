"""Timeliness rules and rulesets: the model, the TOML/JSON loader and the built-ins.

Authors write rulesets by hand, so every error names the rule, the field and, for TOML,
the line, and all errors are reported at once rather than the first only.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cache
from importlib import resources
from typing import Any, Literal

from service.domain.calendar import REGIONS, Calendar, Duration
from service.domain.events import (
    BUILTIN_EVENT_TYPES,
    EXTENDED,
    PAUSED,
    RESUMED,
    DataProblem,
    Event,
)
from service.domain.storable import json_faults

Restart = Literal["parallel", "supersede"]
BUILTIN_RULESETS = ("england-children", "england-adults")
DUE_FROM_DATA = "from:data."
_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
# TOML allows spaces inside the brackets and a trailing comment on a table header.
_RULES_HEADER = re.compile(r"^\s*\[\[\s*rules\s*\]\]\s*(#.*)?$")
_CALENDAR_HEADER = re.compile(r"^\s*\[\s*calendar\s*\]\s*(#.*)?$")
_REASONS_HEADER = re.compile(r"^\s*\[\s*reasons\s*\]\s*(#.*)?$")


@dataclass(frozen=True, slots=True)
class Matcher:
    """An event type, narrowed by accepted values of data keys (`where`) and refused values
    (`unless`), so a rule can tell events apart by what they say, e.g. by `data.source`."""

    type: str
    where: Mapping[str, tuple[object, ...]] = field(default_factory=dict)
    unless: Mapping[str, tuple[object, ...]] = field(default_factory=dict)

    def matches(self, event: Event) -> bool:
        # Plain loops: derivation asks this for every event of a type a rule names, and most
        # matchers have no `where` (two generators a call were a twentieth of an import's CPU).
        if event.type != self.type:
            return False
        data = event.data
        for key, refused in self.unless.items():
            if data.get(key) in refused:
                return False
        for key, accepted in self.where.items():  # noqa: SIM110
            if data.get(key) not in accepted:
                return False
        return True

    def to_json(self) -> str | dict[str, object]:
        if not self.where and not self.unless:
            return self.type
        body: dict[str, object] = {"type": self.type}
        if self.where:
            body["where"] = {k: list(v) for k, v in self.where.items()}
        if self.unless:
            body["unless"] = {k: list(v) for k, v in self.unless.items()}
        return body


@dataclass(frozen=True, slots=True)
class LaterRepeat:
    """A repeat interval that changes once a chain has run a while, e.g. reg. 28's visits:
    at most 6-weekly in a placement's first year, then 3-monthly where it is meant to last."""

    after: Duration
    every: Duration
    started_by: tuple[Matcher, ...] = ()

    def applies_to(self, start: Event) -> bool:
        """Whether a chain opened by `start` changes interval: with no `started_by`, every one."""
        return not self.started_by or any(m.matches(start) for m in self.started_by)

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"after": str(self.after), "every": str(self.every)}
        if self.started_by:
            body["started_by"] = [m.to_json() for m in self.started_by]
        return body


@dataclass(frozen=True, slots=True)
class Rule:
    """One statutory or local timescale."""

    id: str
    name: str
    source: str
    starts_on: tuple[Matcher, ...]
    met_by: tuple[Matcher, ...]
    cancelled_by: tuple[Matcher, ...] = ()
    due: Duration | None = None
    due_from_data: str | None = None
    warn_before: Duration | None = None
    escalate_after: tuple[Duration, ...] = ()
    repeat: tuple[Duration, ...] = ()
    restart: Restart = "parallel"
    correlate_on: str | None = None
    scheduled_by: tuple[Matcher, ...] = ()
    schedule_before: Duration | None = None
    counts_from: tuple[Matcher, ...] = ()
    later_repeat: LaterRepeat | None = None
    # How far an agreed extension may move the due day, and how long a pause may last before
    # it ends by itself; None: the rule allows no extension, or no pause.
    max_extension: Duration | None = None
    max_pause: Duration | None = None
    # The event types its starts, meetings and cancellations name: derivation reads a case's
    # events of these types only, for every case, so they are worked out once per rule.
    named_types: frozenset[str] = field(init=False, compare=False, repr=False)
    # The event types that meet it, and those that meet or cancel it: what a snapshot must
    # show to judge its open positions (service/domain/derive.py, `_RuleDeriver.observe`).
    met_types: frozenset[str] = field(init=False, compare=False, repr=False)
    evidence_types: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        met = frozenset(m.type for m in self.met_by)
        evidence = met | {m.type for m in self.cancelled_by}
        object.__setattr__(self, "named_types", evidence | {m.type for m in self.starts_on})
        object.__setattr__(self, "met_types", met)
        object.__setattr__(self, "evidence_types", evidence)

    @property
    def extendable(self) -> bool:
        return self.max_extension is not None

    @property
    def pausable(self) -> bool:
        return self.max_pause is not None

    def to_json(self) -> dict[str, object]:
        """The rule in the same shape as the TOML that defines it."""
        body: dict[str, object] = {
            "id": self.id,
            "name": self.name,
            "source": self.source,
            "starts_on": [m.to_json() for m in self.starts_on],
            "due": str(self.due) if self.due else f"{DUE_FROM_DATA}{self.due_from_data}",
            "met_by": [m.to_json() for m in self.met_by],
            "cancelled_by": [m.to_json() for m in self.cancelled_by],
            "restart": self.restart,
        }
        optional: dict[str, object | None] = {
            "warn_before": str(self.warn_before) if self.warn_before else None,
            "escalate_after": [str(d) for d in self.escalate_after] or None,
            "repeat": [str(d) for d in self.repeat] or None,
            "correlate_on": self.correlate_on,
            "scheduled_by": [m.to_json() for m in self.scheduled_by] or None,
            "schedule_before": str(self.schedule_before) if self.schedule_before else None,
            "counts_from": [m.to_json() for m in self.counts_from] or None,
            "later_repeat": self.later_repeat.to_json() if self.later_repeat else None,
            "extendable": True if self.max_extension else None,
            "max_extension": str(self.max_extension) if self.max_extension else None,
            "pausable": True if self.max_pause else None,
            "max_pause": str(self.max_pause) if self.max_pause else None,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body


# Why a deadline is late, when the ruleset lists no reasons of its own (`[reasons]`).
DEFAULT_REASONS: tuple[tuple[str, str], ...] = (
    ("child_or_family_unavailable", "Child or family unavailable"),
    ("child_missing", "Child missing"),
    ("awaiting_other_agency", "Awaiting another agency"),
    ("worker_absence", "Worker absence"),
    ("recorded_in_error", "Recorded in error"),
)


@dataclass(frozen=True, slots=True)
class Ruleset:
    """Rules with the calendar they count in and the event types they add to the vocabulary."""

    id: str
    calendar: Calendar
    rules: tuple[Rule, ...]
    event_types: frozenset[str] = frozenset()
    # The organisation's list of delay reasons: (code, label) pairs, in the order shown.
    reasons: tuple[tuple[str, str], ...] = DEFAULT_REASONS
    # Lookups every ingested event makes, worked out once per ruleset.
    known_event_types: frozenset[str] = field(init=False, compare=False, repr=False)
    _by_id: Mapping[str, Rule] = field(init=False, compare=False, repr=False)
    _dated_starts: Mapping[str, tuple[Rule, ...]] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        dated: dict[str, list[Rule]] = {}
        for rule in self.rules:
            if rule.due_from_data:
                for event_type in {m.type for m in rule.starts_on}:
                    dated.setdefault(event_type, []).append(rule)
        object.__setattr__(self, "known_event_types", BUILTIN_EVENT_TYPES | self.event_types)
        object.__setattr__(self, "_by_id", {r.id: r for r in self.rules})
        object.__setattr__(self, "_dated_starts", {k: tuple(v) for k, v in dated.items()})

    def rule(self, rule_id: str) -> Rule | None:
        return self._by_id.get(rule_id)

    def name_of(self, rule_id: str) -> str:
        """What obligations of the rule are called: its name, or its id if it has none here."""
        rule = self._by_id.get(rule_id)
        return rule.name if rule else rule_id

    def reason_label(self, code: str) -> str:
        """What a reason code is called here: its label, or the code if the list lacks it (a
        reason recorded under an earlier list is still shown)."""
        return next((label for known, label in self.reasons if known == code), code)

    def rules_dated_by(self, event_type: str) -> tuple[Rule, ...]:
        """Rules an event of this type starts that take their due date from its data."""
        return self._dated_starts.get(event_type, ())

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "calendar": {
                "region": self.calendar.region,
                "timezone": self.calendar.timezone.key,
                "closures": sorted(d.isoformat() for d in self.calendar.closures),
            },
            "event_types": sorted(self.event_types),
            "reasons": dict(self.reasons),
            "rules": [r.to_json() for r in self.rules],
        }

    def version(self) -> str:
        """A digest of everything the ruleset says, so that two deadlines can be seen to have
        been derived under the same rules and calendar, or not."""
        text = json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class RuleProblem:
    """Where a ruleset is wrong: a JSON pointer into the document, its line in the text, and
    the id of the rule it is in, so an author can find it in a long ruleset either way."""

    pointer: str
    detail: str
    line: int | None = None
    rule_id: str | None = None


class RulesetInvalid(ValueError):
    """A ruleset that cannot be activated, with every problem found."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.pointer}: {p.detail}" for p in problems))


_RULE_KEYS = frozenset(
    {
        "id",
        "name",
        "source",
        "starts_on",
        "due",
        "met_by",
        "cancelled_by",
        "warn_before",
        "escalate_after",
        "repeat",
        "restart",
        "correlate_on",
        "scheduled_by",
        "schedule_before",
        "counts_from",
        "later_repeat",
        "extendable",
        "max_extension",
        "pausable",
        "max_pause",
    }
)
_TOP_KEYS = frozenset({"id", "calendar", "rules", "event_types", "reasons"})
_REASON_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_CALENDAR_KEYS = frozenset({"region", "timezone", "closures"})
_LATER_REPEAT_KEYS = frozenset({"after", "every", "started_by"})


Locate = Callable[[str], int | None]


class _TomlLines:
    """Best-effort line of a pointer in TOML source: the rule's block, then the key in it."""

    def __init__(self, text: str) -> None:
        self._lines = text.splitlines()

    def __call__(self, pointer: str) -> int | None:
        parts = pointer.strip("/").split("/")
        table = parts[0] if parts and parts[0] else ""
        if table == "rules" and len(parts) > 1 and parts[1].isdigit():
            headers = [i for i, ln in enumerate(self._lines) if _RULES_HEADER.match(ln)]
            index = int(parts[1])
            if index >= len(headers):
                return None
            start = headers[index]
            end = next(
                (
                    i
                    for i in range(start + 1, len(self._lines))
                    if self._lines[i].lstrip().startswith("[")
                ),
                len(self._lines),
            )
            key = parts[2] if len(parts) > 2 else None
            return self._find_key(key, start, end) or start + 1
        if table in ("calendar", "reasons"):
            header_of = _CALENDAR_HEADER if table == "calendar" else _REASONS_HEADER
            header = next((i for i, ln in enumerate(self._lines) if header_of.match(ln)), None)
            if header is None:
                # An inline `calendar = {...}` table: the key's own line.
                return self._find_key(table, 0, len(self._lines))
            key = parts[1] if len(parts) > 1 else None
            return self._find_key(key, header, len(self._lines)) or header + 1
        return self._find_key(table, 0, len(self._lines))

    def _find_key(self, key: str | None, start: int, end: int) -> int | None:
        if key is None:
            return None
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        return next((i + 1 for i in range(start, end) if pattern.match(self._lines[i])), None)


_JSON_SPACE = re.compile(r"[ \t\n\r]*")


class _JsonLines:
    """The line of a pointer in JSON text: where its key (or, in a list, its item) starts; for
    a missing key, where the nearest enclosing value starts. The text is walked only once a
    problem needs a line, so valid rulesets cost nothing."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._starts: dict[str, int] | None = None

    def __call__(self, pointer: str) -> int | None:
        if self._starts is None:
            self._starts = _JsonWalk(self._text).starts()
        while pointer and pointer not in self._starts:
            pointer = pointer.rpartition("/")[0]
        return self._starts.get(pointer)


@dataclass(slots=True)
class _Open:
    """A JSON object or list being walked, and how many of its items were seen."""

    pointer: str
    is_object: bool
    items: int = 0


class _JsonWalk:
    """Finds the line every member and item of valid JSON text starts on, by pointer.

    Walked with a stack rather than recursion, so whatever `json.loads` accepted is located;
    scalars are skipped with the standard decoder.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._newlines = [i for i, char in enumerate(text) if char == "\n"]
        self._decoder = json.JSONDecoder()
        self._starts: dict[str, int] = {}

    def starts(self) -> dict[str, int]:
        text = self._text
        stack: list[_Open] = []
        pointer, i = "", self._skip(0)
        self._starts[pointer] = self._line(i)
        while True:
            # `i` is where the value at `pointer` starts.
            if text[i] in "{[":
                container = _Open(pointer, text[i] == "{")
                i = self._skip(i + 1)
                if text[i] not in "}]":
                    stack.append(container)
                    pointer, i = self._next(container, i)
                    continue
                i += 1
            else:
                i = self._decoder.raw_decode(text, i)[1]
            # The value ended at `i`: on to the next member or item, closing finished containers.
            while stack:
                i = self._skip(i)
                if text[i] == ",":
                    pointer, i = self._next(stack[-1], self._skip(i + 1))
                    break
                stack.pop()
                i += 1
            else:
                return self._starts

    def _next(self, container: _Open, i: int) -> tuple[str, int]:
        """The pointer of the member or item starting at `i`, and where its value starts."""
        if container.is_object:
            key, after_key = self._decoder.raw_decode(self._text, i)
            pointer = f"{container.pointer}/{key}"
            value_at = self._skip(self._skip(after_key) + 1)  # past the colon
        else:
            pointer = f"{container.pointer}/{container.items}"
            value_at = i
        container.items += 1
        self._starts[pointer] = self._line(i)
        return pointer, value_at

    def _skip(self, i: int) -> int:
        match = _JSON_SPACE.match(self._text, i)
        return match.end() if match else i

    def _line(self, i: int) -> int:
        return bisect_left(self._newlines, i) + 1


_A_DURATION = "a duration such as '10 working days' or '6 months'"
_MATCHERS = "a non-empty list of event types or {type, where, unless} tables"


class _Reader:
    """Collects problems while turning a parsed document into a Ruleset."""

    def __init__(self, locate: Locate) -> None:
        self.problems: list[RuleProblem] = []
        self._locate = locate

    def fail(self, pointer: str, detail: str) -> None:
        self.problems.append(RuleProblem(pointer, detail, self._locate(pointer)))

    def text(self, doc: Mapping[str, Any], key: str, pointer: str) -> str:
        value = doc.get(key)
        if value is None:
            self.fail(f"{pointer}/{key}", "is required")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{pointer}/{key}", "must be a non-empty string")
            return ""
        return value.strip()

    def duration(self, value: object, pointer: str) -> Duration | None:
        if value is None:
            self.fail(pointer, f"is required: {_A_DURATION}")
            return None
        if not isinstance(value, str):
            self.fail(pointer, f"must be {_A_DURATION}")
            return None
        try:
            return Duration.parse(value)
        except ValueError as exc:
            self.fail(pointer, str(exc))
            return None

    def durations(self, value: object, pointer: str) -> tuple[Duration, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.fail(pointer, "must be a list of durations")
            return ()
        parsed = (self.duration(v, f"{pointer}/{i}") for i, v in enumerate(value))
        return tuple(d for d in parsed if d is not None)

    def matchers(
        self, value: object, pointer: str, known: frozenset[str], *, required: bool
    ) -> tuple[Matcher, ...]:
        if value is None and not required:
            return ()
        if value is None:
            self.fail(pointer, f"is required: {_MATCHERS}")
            return ()
        if not isinstance(value, list) or (required and not value):
            self.fail(pointer, f"must be {_MATCHERS}")
            return ()
        found = (self.matcher(v, f"{pointer}/{i}", known) for i, v in enumerate(value))
        return tuple(m for m in found if m is not None)

    def matcher(self, value: object, pointer: str, known: frozenset[str]) -> Matcher | None:
        where: dict[str, tuple[object, ...]] = {}
        unless: dict[str, tuple[object, ...]] = {}
        if isinstance(value, str):
            event_type = value
        elif isinstance(value, dict):
            event_type = value.get("type", "")
            extra = set(value) - {"type", "where", "unless"}
            if extra:
                self.fail(
                    pointer,
                    f"unknown keys {sorted(extra)}: a matcher has 'type', 'where' and 'unless'",
                )
            where = self.data_values(value.get("where", {}), f"{pointer}/where")
            unless = self.data_values(value.get("unless", {}), f"{pointer}/unless")
        else:
            self.fail(pointer, "must be an event type name or a {type, where, unless} table")
            return None
        if not isinstance(event_type, str) or event_type not in known:
            self.fail(pointer, f"unknown event type {event_type!r}; declare it in event_types")
            return None
        return Matcher(event_type, where, unless)

    def data_values(self, value: object, pointer: str) -> dict[str, tuple[object, ...]]:
        """A `where` or `unless` table: data keys to a value or a list of values."""
        if not isinstance(value, dict):
            self.fail(pointer, "must map data keys to a value or list of values")
            return {}
        return {
            str(key): tuple(values) if isinstance(values, list) else (values,)
            for key, values in value.items()
        }

    def later_repeat(
        self, value: object, pointer: str, known: frozenset[str]
    ) -> LaterRepeat | None:
        if not isinstance(value, dict):
            self.fail(pointer, "must be a table {after, every, started_by}")
            return None
        self.unknown_keys(value, _LATER_REPEAT_KEYS, pointer)
        after = self.duration(value.get("after"), f"{pointer}/after")
        every = self.duration(value.get("every"), f"{pointer}/every")
        started_by = self.matchers(
            value.get("started_by"), f"{pointer}/started_by", known, required=False
        )
        if after is None or every is None:
            return None
        return LaterRepeat(after, every, started_by)

    def unknown_keys(self, doc: Mapping[str, Any], allowed: frozenset[str], pointer: str) -> None:
        for key in sorted(set(doc) - allowed):
            self.fail(f"{pointer}/{key}", f"unknown field; expected one of {sorted(allowed)}")


def _read_rule(reader: _Reader, doc: object, pointer: str, known: frozenset[str]) -> Rule | None:
    if not isinstance(doc, dict):
        reader.fail(pointer, "must be a table")
        return None
    reader.unknown_keys(doc, _RULE_KEYS, pointer)
    rule_id = reader.text(doc, "id", pointer)
    if rule_id and not _RULE_ID.match(rule_id):
        reader.fail(f"{pointer}/id", "must be lower-case letters, digits and hyphens")
    due_text = doc.get("due")
    due: Duration | None = None
    due_from_data: str | None = None
    if isinstance(due_text, str) and due_text.strip().startswith(DUE_FROM_DATA):
        due_from_data = due_text.strip()[len(DUE_FROM_DATA) :]
        if not due_from_data:
            reader.fail(f"{pointer}/due", "'from:data.' needs a data key, e.g. 'from:data.due_at'")
    else:
        due = reader.duration(due_text, f"{pointer}/due")
    restart = doc.get("restart", "parallel")
    if restart not in ("parallel", "supersede"):
        reader.fail(f"{pointer}/restart", "must be 'parallel' or 'supersede'")
        restart = "parallel"
    correlate_on = doc.get("correlate_on")
    if correlate_on is not None and not isinstance(correlate_on, str):
        reader.fail(f"{pointer}/correlate_on", "must be a data key name")
        correlate_on = None
    scheduled_by = reader.matchers(
        doc.get("scheduled_by"), f"{pointer}/scheduled_by", known, required=False
    )
    schedule_before = None
    if "schedule_before" in doc:
        schedule_before = reader.duration(doc["schedule_before"], f"{pointer}/schedule_before")
    if ("scheduled_by" in doc) != ("schedule_before" in doc):
        reader.fail(f"{pointer}/scheduled_by", "scheduled_by and schedule_before go together")
    escalate_after = reader.durations(doc.get("escalate_after"), f"{pointer}/escalate_after")
    counts_from = reader.matchers(
        doc.get("counts_from"), f"{pointer}/counts_from", known, required=False
    )
    if counts_from and due_from_data is not None:
        reader.fail(f"{pointer}/counts_from", "needs a duration in due, not 'from:data.'")
    repeat = reader.durations(doc.get("repeat"), f"{pointer}/repeat")
    later_repeat = None
    if "later_repeat" in doc:
        later_repeat = reader.later_repeat(doc["later_repeat"], f"{pointer}/later_repeat", known)
        if not doc.get("repeat"):
            reader.fail(f"{pointer}/later_repeat", "needs repeat, whose interval it replaces")
    max_extension = _allowance(reader, doc, pointer, "extendable", "max_extension")
    max_pause = _allowance(reader, doc, pointer, "pausable", "max_pause")
    rule = Rule(
        id=rule_id,
        name=reader.text(doc, "name", pointer),
        source=reader.text(doc, "source", pointer),
        starts_on=reader.matchers(
            doc.get("starts_on"), f"{pointer}/starts_on", known, required=True
        ),
        met_by=reader.matchers(doc.get("met_by"), f"{pointer}/met_by", known, required=True),
        cancelled_by=reader.matchers(
            doc.get("cancelled_by"), f"{pointer}/cancelled_by", known, required=False
        ),
        due=due,
        due_from_data=due_from_data,
        warn_before=(
            reader.duration(doc["warn_before"], f"{pointer}/warn_before")
            if "warn_before" in doc
            else None
        ),
        escalate_after=escalate_after,
        repeat=repeat,
        restart=restart,
        correlate_on=correlate_on,
        scheduled_by=scheduled_by,
        schedule_before=schedule_before,
        counts_from=counts_from,
        later_repeat=later_repeat,
        max_extension=max_extension,
        max_pause=max_pause,
    )
    return rule


def _allowance(
    reader: _Reader, doc: Mapping[str, Any], pointer: str, flag: str, most: str
) -> Duration | None:
    """`extendable = true` with `max_extension`, or `pausable = true` with `max_pause`: the
    maximum, or None when the rule does not allow it. A maximum is required, so no agreement
    or pause can move a deadline without bound."""
    allowed = doc.get(flag, False)
    if not isinstance(allowed, bool):
        reader.fail(f"{pointer}/{flag}", "must be true or false")
        return None
    if not allowed:
        if most in doc:
            reader.fail(f"{pointer}/{most}", f"needs {flag} = true")
        return None
    if most not in doc:
        reader.fail(f"{pointer}/{most}", f"is required with {flag} = true: {_A_DURATION}")
        return None
    return reader.duration(doc[most], f"{pointer}/{most}")


def _read_reasons(reader: _Reader, doc: object) -> tuple[tuple[str, str], ...]:
    """The `[reasons]` table: codes to labels, replacing the default list."""
    if doc is None:
        return DEFAULT_REASONS
    if not isinstance(doc, dict) or not doc:
        reader.fail("/reasons", "must be a table of reason codes to labels")
        return DEFAULT_REASONS
    reasons: list[tuple[str, str]] = []
    for code, label in doc.items():
        if not _REASON_CODE.match(code):
            reader.fail(
                f"/reasons/{code}", "a code must be lower_snake_case, starting with a letter"
            )
        elif not isinstance(label, str) or not label.strip() or len(label) > 200:
            reader.fail(f"/reasons/{code}", "must be a label of 1 to 200 characters")
        else:
            reasons.append((code, label.strip()))
    return tuple(reasons)


def _read_calendar(reader: _Reader, doc: object) -> Calendar:
    if doc is None:
        return Calendar()
    if not isinstance(doc, dict):
        reader.fail("/calendar", "must be a table")
        return Calendar()
    reader.unknown_keys(doc, _CALENDAR_KEYS, "/calendar")
    closures: list[date] = []
    raw_closures = doc.get("closures", [])
    if not isinstance(raw_closures, list):
        reader.fail("/calendar/closures", "must be a list of dates (YYYY-MM-DD)")
        raw_closures = []
    for i, raw in enumerate(raw_closures):
        if isinstance(raw, date):
            closures.append(raw)
            continue
        try:
            closures.append(date.fromisoformat(str(raw)))
        except ValueError:
            reader.fail(f"/calendar/closures/{i}", f"{raw!r} is not a date (YYYY-MM-DD)")
    region = doc.get("region", "england-and-wales")
    timezone = doc.get("timezone", "Europe/London")
    if str(region) not in REGIONS:
        reader.fail(
            "/calendar/region", f"unknown region {region!r}: expected one of {list(REGIONS)}"
        )
        region = "england-and-wales"
    try:
        return Calendar(region=str(region), timezone=str(timezone), closures=closures)
    except ValueError as exc:
        reader.fail("/calendar/timezone", str(exc))
        return Calendar()


_RULE_POINTER = re.compile(r"^/rules/([0-9]+)(?:/(.*))?$")


def _naming_the_rule(problem: RuleProblem, raw_rules: Sequence[object]) -> RuleProblem:
    """A problem inside a rule, naming the rule by its id as written (or its place, without
    one) and the field, so the message alone finds it."""
    match = _RULE_POINTER.match(problem.pointer)
    if match is None:
        return problem
    index = int(match[1])
    raw = raw_rules[index] if index < len(raw_rules) else None
    written = raw.get("id") if isinstance(raw, dict) else None
    rule_id = written.strip() if isinstance(written, str) and written.strip() else None
    where = f"rule {rule_id!r}" if rule_id else f"rule #{index + 1} (no id)"
    if match[2]:
        where += f", {match[2]}"
    return replace(problem, detail=f"{where}: {problem.detail}", rule_id=rule_id)


def _read_ruleset(doc: Mapping[str, Any], locate: Locate, default_id: str) -> Ruleset:
    reader = _Reader(locate)
    reader.unknown_keys(doc, _TOP_KEYS, "")
    declared = doc.get("event_types", [])
    extra: set[str] = set()
    if not isinstance(declared, list):
        reader.fail("/event_types", "must be a list of event type names")
        declared = []
    for i, name in enumerate(declared):
        if not isinstance(name, str) or not _TYPE_NAME.match(name):
            reader.fail(f"/event_types/{i}", "must be lower_snake_case, starting with a letter")
        else:
            extra.add(name)
    known = BUILTIN_EVENT_TYPES | extra
    calendar = _read_calendar(reader, doc.get("calendar"))
    reasons = _read_reasons(reader, doc.get("reasons"))
    raw_rules = doc.get("rules")
    if raw_rules is None:
        reader.fail("/rules", "is required: a ruleset needs at least one [[rules]] table")
        raw_rules = []
    elif not isinstance(raw_rules, list) or not raw_rules:
        reader.fail("/rules", "must be a non-empty list of [[rules]] tables")
        raw_rules = []
    rules = [_read_rule(reader, r, f"/rules/{i}", known) for i, r in enumerate(raw_rules)]
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule is not None and rule.id in seen:
            reader.fail(f"/rules/{i}/id", f"duplicate rule id {rule.id!r}")
        if rule is not None:
            seen.add(rule.id)
    if reader.problems:
        raise RulesetInvalid([_naming_the_rule(p, raw_rules) for p in reader.problems])
    ruleset_id = doc.get("id", default_id)
    return Ruleset(
        id=str(ruleset_id),
        calendar=calendar,
        rules=tuple(r for r in rules if r is not None),
        event_types=frozenset(extra),
        reasons=reasons,
    )


def _toml_problem(exc: tomllib.TOMLDecodeError) -> RuleProblem:
    match = re.search(r"line (\d+)", str(exc))
    return RuleProblem("", f"not valid TOML: {exc}", int(match.group(1)) if match else None)


def load_ruleset(
    text: str, *, format: Literal["toml", "json"] = "toml", default_id: str = "custom"
) -> Ruleset:
    """Parse and validate a ruleset; raises RulesetInvalid listing every problem."""
    if format == "json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RulesetInvalid(
                [RuleProblem("", f"not valid JSON: {exc.msg}", exc.lineno)]
            ) from exc
        if not isinstance(doc, dict):
            raise RulesetInvalid([RuleProblem("", "a ruleset must be a JSON object")])
        return _read_storable(doc, _JsonLines(text), default_id)
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesetInvalid([_toml_problem(exc)]) from exc
    return _read_storable(parsed, _TomlLines(text), default_id)


def _read_storable(doc: Mapping[str, Any], locate: Locate, default_id: str) -> Ruleset:
    """Refuse, before reading it, a document holding what no database gives back unchanged
    (storable.py): rule names are stored with every obligation, and the whole ruleset is
    read back by GET /v1/rules."""
    problems = []
    for fault in json_faults(doc):
        pointer = "".join(f"/{part}" for part in fault.path)
        problems.append(RuleProblem(pointer, fault.detail, locate(pointer)))
    if problems:
        raise RulesetInvalid(problems)
    return _read_ruleset(doc, locate, default_id)


def clock_refusal(event: Event, ruleset: Ruleset) -> DataProblem | None:
    """Why the deadline an event about a clock names cannot take it under `ruleset`: no such
    rule, or one that allows no extension or no pause; None when it can."""
    rule_id = event.data.get("rule_id")
    rule = ruleset.rule(rule_id) if isinstance(rule_id, str) else None
    if rule is None:
        return DataProblem("rule_id", f"names no rule of the active ruleset: {rule_id!r}")
    if event.type == EXTENDED and not rule.extendable:
        return DataProblem("rule_id", f"rule {rule.id!r} is not extendable")
    if event.type in (PAUSED, RESUMED) and not rule.pausable:
        return DataProblem("rule_id", f"rule {rule.id!r} is not pausable")
    return None


def reason_refusal(event: Event, ruleset: Ruleset) -> DataProblem | None:
    """A reason code not in the organisation's list, or None."""
    code = event.data.get("reason")
    if code is None or any(code == known for known, _ in ruleset.reasons):
        return None
    codes = ", ".join(known for known, _ in ruleset.reasons)
    return DataProblem("reason", f"unknown reason {code!r}; the organisation's reasons: {codes}")


def builtin_ruleset_text(name: str) -> str:
    """The TOML source of a built-in ruleset, as shipped."""
    if name not in BUILTIN_RULESETS:
        raise KeyError(name)
    return resources.files("service.domain").joinpath(f"rulesets/{name}.toml").read_text("utf-8")


@cache
def builtin_ruleset(name: str) -> Ruleset:
    """A built-in ruleset, parsed once per process."""
    return load_ruleset(builtin_ruleset_text(name), default_id=name)


def builtin_rulesets() -> Iterator[Ruleset]:
    return (builtin_ruleset(name) for name in BUILTIN_RULESETS)
