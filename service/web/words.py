"""An event's data in words for the case timeline: what a manager reads, not what a case
management system sent (`plan: true`, `cp-review`, `2026-11-02`).

Only the fields of the event vocabulary (the ones built-in rules read) are put in words: their
meaning is known. Any other field a system sends is shown exactly as it was sent, key and
value, since only its sender knows what it means (and what is accepted reads back exactly).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date, datetime

from service.domain.events import parse_day_or_instant

# The data fields built-in rules read (domain/events.py), named as a manager would.
_LABELS = {
    "outcome": "Outcome",
    "plan": "Child protection plan",
    "long_term": "Long-term placement",
    "review": "Review",
    "scheduled_for": "Scheduled for",
    "task_id": "Task",
    "due_at": "Due",
}
# Outcomes are codes from a fixed list (REFERRAL_OUTCOMES, SECTION47_OUTCOMES).
_OUTCOME_FIELDS = frozenset({"outcome"})


def _day(value: date) -> str:
    return f"{value:%a} {value.day} {value:%b %Y}"


def label(key: str) -> str:
    """A data field's name: 'long_term' as 'Long-term placement'; another as it was sent."""
    return _LABELS.get(key, key)


def value_in_words(
    key: str,
    value: object,
    rule_names: Mapping[str, str],
    moment: Callable[[datetime], str],
) -> str:
    """For a vocabulary field: yes or no for a flag, a rule's name for its id, a date as the
    dashboard writes dates (an instant in the organisation's timezone), a code from a fixed
    list in words. Any other field's value as it was sent: text as is, the rest as JSON."""
    if key not in _LABELS:
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, str):
        if value in rule_names:
            return rule_names[value]
        when = parse_day_or_instant(value)
        if isinstance(when, datetime):
            return moment(when)
        if isinstance(when, date):
            return _day(when)
        if key in _OUTCOME_FIELDS:
            text = value.replace("_", " ")
            return text[:1].upper() + text[1:]
        return value
    return json.dumps(value, ensure_ascii=False)


def facts(
    data: Mapping[str, object],
    rule_names: Mapping[str, str],
    moment: Callable[[datetime], str],
) -> list[tuple[str, str]]:
    """An event's data as (label, value) pairs in words, in the order of their keys."""
    return [
        (label(key), value_in_words(key, value, rule_names, moment))
        for key, value in sorted(data.items())
    ]
