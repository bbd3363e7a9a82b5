"""Opaque keyset cursors: a list resumes after the last item it returned."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

from service.api.problems import Problem
from service.api.times import in_range
from service.domain.events import parse_day_or_instant

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page (default 100).")]
Cursor = Annotated[
    str | None,
    Query(
        description="`next_cursor` from the previous page.",
        # What encode_cursor writes: unpadded base64url.
        json_schema_extra={"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
    ),
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError) as exc:
        raise bad_cursor() from exc
    if not isinstance(key, list) or len(key) != size:
        raise bad_cursor()
    return key


def decode_instant_cursor(cursor: str) -> tuple[datetime, str]:
    """The (instant, id) key of lists ordered by a time and then by id."""
    after_at, after_id = decode_cursor(cursor, 2)
    at = parse_day_or_instant(after_at)
    if not isinstance(at, datetime) or not in_range(at) or not isinstance(after_id, str):
        raise bad_cursor()
    return at, after_id


def kept_reports_page(rows: Sequence[Mapping[str, Any]], limit: int) -> dict[str, Any]:
    """A page of kept reports (imports, syncs), newest first, from `limit + 1` rows read: the
    one more says another page follows, which resumes after the last row shown. The time a
    report was kept orders the list and is not part of it."""
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last["created_at"].isoformat(), last["id"])
    items = [{k: v for k, v in row.items() if k != "created_at"} for row in rows[:limit]]
    return {"items": items, "next_cursor": next_cursor}


def bad_cursor() -> Problem:
    return Problem(
        422,
        "The cursor is not one this list returned.",
        slug="validation",
        errors=[{"parameter": "cursor", "detail": "not a valid cursor"}],
    )
