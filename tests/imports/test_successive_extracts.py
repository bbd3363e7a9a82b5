"""Successive Annex A extracts of one authority, imported through the API: a later file adds to
what earlier ones established and never takes back what they proved."""

from __future__ import annotations

from datetime import date
from typing import Any

from conftest import Tenant
from workbooks import annex_a_sheet, build_workbook

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def import_extract(tenant: Tenant, extracted_on: str, data: bytes) -> dict[str, Any]:
    response = await tenant.writer.post(
        f"/v1/imports/annex-a?extracted_on={extracted_on}",
        content=data,
        headers={"content-type": XLSX},
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


async def event_ids(tenant: Tenant, case_id: str) -> set[str]:
    response = await tenant.reader.get("/v1/events", params={"case_id": case_id, "limit": 1000})
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["items"]}


def referral_allocated_to(worker: str, team: str) -> bytes:
    row = {
        "Child Unique ID": "SE-1",
        "Date of referral": date(2026, 8, 14),
        "Allocated Worker": worker,
        "Allocated Team": team,
    }
    return build_workbook(annex_a_sheet(3, [row]))


async def test_a_worker_written_with_other_spaces_in_a_later_extract_is_not_a_reallocation(
    tenant: Tenant,
) -> None:
    await import_extract(
        tenant, "2026-10-30", referral_allocated_to("Mathilde Cutsforth", "North East")
    )
    before = await event_ids(tenant, "SE-1")

    await import_extract(
        tenant,
        "2026-11-20",
        referral_allocated_to(
            "Mathilde\N{NO-BREAK SPACE}Cutsforth ", "North\N{NARROW NO-BREAK SPACE}East"
        ),
    )

    assert await event_ids(tenant, "SE-1") == before
    case = (await tenant.reader.get("/v1/cases/SE-1")).json()
    assert (case["worker_id"], case["team_id"]) == ("Mathilde Cutsforth", "North East")
