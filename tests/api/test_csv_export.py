"""CSV exports: the same rows as the JSON lists, streamed, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from conftest import Tenant

import service.api.obligations as obligations_api

CSV = {"format": "csv"}


def event(event_id: str, kind: str, case_id: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"id": event_id, "type": kind, "case_id": case_id, "occurred_at": at, **fields}


async def refer(tenant: Tenant, case_id: str, worker: str = "W-1", team: str = "T-1") -> None:
    referral = event(
        f"{case_id}-ref",
        "referral_received",
        case_id,
        "2026-11-02T10:00:00Z",
        worker_id=worker,
        team_id=team,
    )
    response = await tenant.writer.post("/v1/events", json=referral)
    assert response.status_code == 201, response.text


def table(response: httpx.Response) -> list[list[str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))


def cells(value: object) -> str:
    """A JSON value as the CSV writes it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def json_items(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    response = await client.get(path, params={**params, "limit": 1000})
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_the_obligations_export_has_the_list_fields_as_its_header(tenant: Tenant) -> None:
    await refer(tenant, "C-1")
    [item, *_] = await json_items(tenant.reader, "/v1/obligations")
    header, *_ = table(await tenant.reader.get("/v1/obligations", params=CSV))
    assert header == list(item)


async def test_the_obligations_export_holds_the_rows_the_list_shows(tenant: Tenant) -> None:
    for number in range(1, 4):
        await refer(tenant, f"C-{number}")
    items = await json_items(tenant.reader, "/v1/obligations")
    header, *rows = table(await tenant.reader.get("/v1/obligations", params=CSV))
    assert rows == [[cells(item[name]) for name in header] for item in items]


async def test_accept_text_csv_asks_for_the_export(tenant: Tenant) -> None:
    await refer(tenant, "C-1")
    response = await tenant.reader.get("/v1/obligations", headers={"Accept": "text/csv"})
    assert len(table(response)) > 1
    assert response.headers["content-disposition"] == 'attachment; filename="obligations.csv"'


async def test_the_export_runs_past_one_page_of_reads(
    tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(obligations_api, "EXPORT_PAGE", 2)
    for number in range(1, 4):
        await refer(tenant, f"C-{number}")
    items = await json_items(tenant.reader, "/v1/obligations")
    _, *rows = table(await tenant.reader.get("/v1/obligations", params=CSV))
    assert [row[0] for row in rows] == [item["id"] for item in items]
    assert len(rows) > 2


async def test_the_export_keeps_the_lists_filters(tenant: Tenant) -> None:
    await refer(tenant, "C-1", team="T-1")
    await refer(tenant, "C-2", team="T-2")
    header, *rows = table(
        await tenant.reader.get("/v1/obligations", params={**CSV, "team_id": "T-2"})
    )
    assert {row[header.index("case_id")] for row in rows} == {"C-2"}


async def test_lines_end_with_crlf_and_text_is_utf8(tenant: Tenant) -> None:
    await refer(tenant, "C-1", worker="Zoë")
    body = (await tenant.reader.get("/v1/obligations", params=CSV)).content
    assert body.count(b"\r\n") == body.count(b"\n")
    assert "Zoë".encode() in body


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
async def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_written_as_text(
    tenant: Tenant, start: str
) -> None:
    worker = f'{start}HYPERLINK("http://example.org","x")'
    await refer(tenant, "C-1", worker=worker)
    header, *rows = table(await tenant.reader.get("/v1/obligations", params=CSV))
    assert {row[header.index("worker_id")] for row in rows} == {"'" + worker}


@pytest.mark.parametrize("widget", ["workers", "teams"])
async def test_the_load_exports_hold_the_rows_the_widget_shows(tenant: Tenant, widget: str) -> None:
    await refer(tenant, "C-1", worker="W-1", team="T-1")
    await refer(tenant, "C-2", worker="W-2", team="T-2")
    items = await json_items(tenant.reader, f"/v1/dashboard/{widget}")
    header, *rows = table(await tenant.reader.get(f"/v1/dashboard/{widget}", params=CSV))
    assert header == list(items[0])
    assert rows == [[cells(item[name]) for name in header] for item in items]


async def test_the_timeliness_export_holds_the_rows_the_widget_shows(tenant: Tenant) -> None:
    await refer(tenant, "C-1")
    decision = event(
        "C-1-dec",
        "referral_decision_made",
        "C-1",
        "2026-11-03T10:00:00Z",
        data={"outcome": "assessment"},
    )
    await tenant.writer.post("/v1/events", json=decision)
    items = (await tenant.reader.get("/v1/dashboard/timeliness")).json()["items"]
    header, *rows = table(await tenant.reader.get("/v1/dashboard/timeliness", params=CSV))
    assert header == list(items[0])
    assert rows == [[cells(item[name]) for name in header] for item in items]
