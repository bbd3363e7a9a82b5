"""Keyset paging: "after the last row seen" as a condition an index range can start from.

Written only as `a > x OR (a = x AND b > y)`, neither PostgreSQL nor SQLite can start an index
range from it: each page reads the index from its first entry and filters, so paging through
n rows costs about n²/page reads (a million-row CSV export never finished). The leading
`a >= x`, which the rest implies, gives both planners the range start.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_


def after(
    first: ColumnElement[Any], second: ColumnElement[Any], key: tuple[datetime, str]
) -> ColumnElement[bool]:
    """Rows after `key` in ascending (`first`, `second`) order."""
    at, last_id = key
    return and_(first >= at, or_(first > at, second > last_id))


def before(
    first: ColumnElement[Any], second: ColumnElement[Any], key: tuple[datetime, str]
) -> ColumnElement[bool]:
    """Rows before `key` in descending (`first`, `second`) order."""
    at, last_id = key
    return and_(first <= at, or_(first < at, second < last_id))
