"""CSV exports of the lists and widgets, for the spreadsheets managers already keep.

One shape for every export: UTF-8, a header row, CRLF line ends (RFC 4180), instants in
ISO 8601 UTC with `Z`, days as `YYYY-MM-DD`, empty cells for nulls. Rows are streamed as they
are read, so a million-row export holds one page in memory, not the file.

Spreadsheets run a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return as a
formula, and identifiers and names come from case-management systems and workbooks that
anyone may have typed into: such a cell is written with a leading apostrophe, which
spreadsheets show as text and never evaluate.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FLUSH_CHARS = 64 * 1024
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"

FormatQuery = Annotated[
    Literal["json", "csv"] | None,
    Query(description="`csv` for a CSV file (as `Accept: text/csv` asks); JSON by default."),
]

# For `responses=` on a route that can answer CSV: its OpenAPI shows both bodies.
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "JSON by default; CSV with `format=csv` or `Accept: text/csv`.",
    }
}


def wants_csv(request: Request, format: str | None) -> bool:
    """CSV when `format=csv`, or when the caller accepts CSV and did not ask for JSON."""
    if format is not None:
        return format == "csv"
    return "text/csv" in request.headers.get("accept", "")


def cell(value: object) -> str:
    """One value as its CSV cell text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


async def _lines(
    header: Sequence[str], rows: AsyncIterable[Iterable[object]]
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    async for row in rows:
        writer.writerow([cell(v) for v in row])
        if buffer.tell() >= _FLUSH_CHARS:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def csv_response(
    filename: str, header: Sequence[str], rows: AsyncIterable[Iterable[object]]
) -> StreamingResponse:
    """A streamed CSV download named `filename`."""
    return StreamingResponse(
        _lines(header, rows),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def columns_of(model: type[BaseModel]) -> list[str]:
    """An export's columns: the fields of the JSON item it mirrors, in the same order."""
    return list(model.model_fields)


def row_of(item: object, columns: Sequence[str]) -> list[object]:
    return [getattr(item, name) for name in columns]


async def _each(items: Iterable[object], columns: Sequence[str]) -> AsyncIterator[list[object]]:
    for item in items:
        yield row_of(item, columns)


def csv_of(filename: str, model: type[BaseModel], items: Iterable[object]) -> StreamingResponse:
    """Items already read (anything with the model's fields as attributes) as a CSV file."""
    columns = columns_of(model)
    return csv_response(filename, columns, _each(items, columns))
