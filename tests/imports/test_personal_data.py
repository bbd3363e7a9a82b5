"""An import keeps no personal data: after importing a workbook full of it, neither the
database (every row of every table) nor the `caseclock` loggers' output holds any of it."""

from __future__ import annotations

import io
import logging
import zipfile
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from conftest import Tenant
from fastapi import FastAPI
from sqlalchemy import select
from workbooks import TEMPLATE_HEADINGS, annex_a_sheet, build_workbook

from service.store.tables import metadata

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BIRTH = date(2011, 3, 17)
PERSONAL: dict[str, object] = {
    "Date of Birth": BIRTH,
    "Gender": "Gndr-Qx7",
    "Ethnicity": "Ethn-Zk9",
    "Disability": "Dsbl-Wm4",
    "Age of Child (Years)": 15,
    "Placement Postcode": "ZZ99 9ZZ",
    "Placement Provider": "Prov-Hj2",
}
# How the personal values could look once written anywhere.
TRACES = (
    "2011-03-17",
    "17/03/2011",
    "2011, 3, 17",
    "Gndr-Qx7",
    "Ethn-Zk9",
    "Dsbl-Wm4",
    "ZZ99 9ZZ",
    "ZZ999ZZ",
    "Prov-Hj2",
)

ROWS: dict[int, dict[str, object]] = {
    1: {"Date of Contact": date(2026, 10, 1)},
    2: {"Organisation completing assessment": "School"},
    3: {"Date of referral": date(2026, 8, 14), "Referral NFA?": "No"},
    4: {"Continuous Assessment Start Date": date(2026, 8, 17)},
    5: {"Strategy discussion initiating Section 47 Enquiry Start Date": date(2026, 10, 26)},
    6: {"CIN Start Date": date(2026, 3, 2), "Date Child Was Last Seen": date(2026, 11, 2)},
    7: {
        "Child Protection Plan Start Date": date(2026, 2, 2),
        "Date of the Last Statutory Visit": date(2026, 11, 2),
        "Date of latest review conference": date(2026, 7, 15),
    },
    8: {
        "Date Started to be Looked After": date(2024, 1, 10),
        "Date of Latest Statutory Review": date(2026, 9, 1),
        "Date of Last Social Work Visit": date(2026, 10, 20),
        "Start Date of Most Recent Placement": date(2025, 6, 2),
    },
    9: {"Eligibility Category": "Relevant", "Latest Pathway Plan Review Date": date(2026, 9, 1)},
    10: {"Date of Placement Order": date(2026, 4, 1)},
}


def full_row(list_number: int, child: str, cells: dict[str, object]) -> dict[str, object]:
    """A row with every personal-data column its list has filled in."""
    headings = TEMPLATE_HEADINGS[list_number]
    personal = {k: v for k, v in PERSONAL.items() if k in headings}
    allocation = {
        k: v for k, v in {"Allocated Team": "T1", "Allocated Worker": "W1"}.items() if k in headings
    }
    return {"Child Unique ID": child, **personal, **allocation, **cells}


def workbook() -> bytes:
    sheets = [
        annex_a_sheet(
            number,
            [
                full_row(number, f"PD-{number}", cells),
                # Refused rows must not echo their other cells either.
                full_row(number, f"PD-{number}-bad", {**cells, **_bad_date(number)}),
            ],
        )
        for number, cells in ROWS.items()
    ]
    return build_workbook(*sheets)


def _bad_date(list_number: int) -> dict[str, object]:
    first_date = next((k for k, v in ROWS[list_number].items() if isinstance(v, date)), None)
    return {first_date: "31/02/2026"} if first_date else {}


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def caseclock_logs() -> Iterator[Captured]:
    """Everything the `caseclock` loggers write while the test runs, at every level."""
    logger = logging.getLogger("caseclock")
    handler = Captured()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def database_dump(app: FastAPI) -> str:
    """Every row of every table, as text."""
    lines: list[str] = []
    async with app.state.session_factory() as session:
        for table in metadata.sorted_tables:
            rows: Any = await session.execute(select(table))
            lines += [f"{table.name}: {tuple(row)!r}" for row in rows]
    return "\n".join(lines)


async def imported(tenant: Tenant) -> dict[str, Any]:
    response = await tenant.writer.post(
        "/v1/imports/annex-a?extracted_on=2026-11-20",
        content=workbook(),
        headers={"content-type": XLSX},
    )
    return await tenant.import_report(response)


def test_the_workbook_really_carries_the_personal_data() -> None:
    with zipfile.ZipFile(io.BytesIO(workbook())) as archive:
        text = "".join(archive.read(name).decode() for name in archive.namelist())

    assert [trace for trace in ("Gndr-Qx7", "Ethn-Zk9", "ZZ99 9ZZ", "40619") if trace in text] == [
        "Gndr-Qx7",
        "Ethn-Zk9",
        "ZZ99 9ZZ",
        "40619",
    ]


async def test_every_tracked_list_is_imported_and_every_bad_row_reported(tenant: Tenant) -> None:
    report = await imported(tenant)

    assert [item["list"] for item in report["lists"]] == [3, 4, 5, 6, 7, 8, 9]
    assert all(item["events_created"] > 0 for item in report["lists"])
    assert len(report["rejected"]) == 7


async def test_no_personal_data_reaches_any_table_after_an_import(
    app: FastAPI, tenant: Tenant
) -> None:
    await imported(tenant)

    dump = await database_dump(app)

    assert "PD-8" in dump  # the scan does see what the import stored
    assert [trace for trace in TRACES if trace in dump] == []


async def test_no_personal_data_reaches_the_caseclock_logs_during_an_import(
    tenant: Tenant, caseclock_logs: Captured
) -> None:
    await imported(tenant)

    output = "\n".join(caseclock_logs.lines)

    assert "events created" in output  # the scan does see the import's own log line
    assert [trace for trace in TRACES if trace in output] == []
