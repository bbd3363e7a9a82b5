"""Successive Annex A extracts of one authority, imported through the API: a later file adds to
what earlier ones established and never takes back what they proved."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from conftest import Tenant
from workbooks import annex_a_sheet, build_workbook

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LONDON = ZoneInfo("Europe/London")


async def import_extract(tenant: Tenant, extracted_on: str, data: bytes) -> dict[str, Any]:
    response = await tenant.writer.post(
        f"/v1/imports/annex-a?extracted_on={extracted_on}",
        content=data,
        headers={"content-type": XLSX},
    )
    return await tenant.import_report(response)


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


def protection_extract(last_visit: date) -> bytes:
    """A workbook whose one child has been on a plan since Monday 2 February 2026; Lists 6 and
    8, the other lists that give visits, are there and do not name the child."""
    row = {
        "Child Unique ID": "SE-2",
        "Child Protection Plan Start Date": date(2026, 2, 2),
        "Date of the Last Statutory Visit": last_visit,
    }
    return build_workbook(annex_a_sheet(6), annex_a_sheet(7, [row]), annex_a_sheet(8))


def london(day: str, at: time) -> datetime:
    return datetime.combine(date.fromisoformat(day), at, tzinfo=LONDON).astimezone(UTC)


async def test_a_visit_an_earlier_extract_proved_missed_stays_met_late_by_the_later_visit(
    tenant: Tenant,
) -> None:
    # The visit after Monday 2 March is due within 10 working days: by the end of Monday
    # 16 March (no bank holiday between). The extract of 31 March still shows 2 March.
    await import_extract(tenant, "2026-03-31", protection_extract(date(2026, 3, 2)))
    await import_extract(tenant, "2026-04-30", protection_extract(date(2026, 4, 20)))

    response = await tenant.reader.get(
        "/v1/obligations", params={"case_id": "SE-2", "rule_id": "cp-visit", "limit": 100}
    )
    visits = response.json()["items"]
    [missed] = [
        v for v in visits if datetime.fromisoformat(v["due_at"]) == london("2026-03-16", time.max)
    ]
    assert missed["status"] == "met_late"
    # Met by 20 April at the latest: the meeting event is the later extract's latest visit.
    assert datetime.fromisoformat(missed["met_at"]) == london("2026-04-20", time.min)
    assert missed["met_at_latest"] is True
    assert missed["met_by_event"] == "annex-a:SE-2:child_visited:2026-04-20"
