"""Time reading an Annex A workbook with python-calamine and with openpyxl's read-only mode.

Builds a realistic workbook (lists 3-9, ``--rows`` rows each, with the personal-data columns
a real file carries, mostly Excel dates with some DD/MM/YYYY strings and blanks), then times:

- each engine turning every sheet into Python rows (the work the reader needs from it);
- the service's whole read (archive checks, header recognition, cell parsing; calamine);
- the archive checks alone.

Prints JSON with the median (and every run) in seconds, and the workbook's largest member
compression ratio, to show the zip-bomb limit sits well above a real file's.

    .venv/bin/python bench/annex_a_read.py [--rows 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import time
import zipfile
from collections.abc import Callable
from datetime import date, timedelta

import openpyxl  # type: ignore[import-untyped]
from python_calamine import CalamineWorkbook

from service.imports.annex_a import read_annex_a
from service.imports.workbook import check_archive

EXTRACTED_ON = date(2026, 11, 20)
PERSONAL = (
    "Gender",
    "Ethnicity",
    "Date of Birth",
    "Age of Child (Years)",
    "Disability",
    "Home Postcode",
)
# Per list: (sheet, used date headings, other used headings, further non-personal headings).
LISTS: dict[int, tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    3: ("List_3", ("Date of referral",), ("Referral NFA?",), ("Referral Source",)),
    4: (
        "List_4",
        ("Continuous Assessment Start Date", "Continuous Assessment Date of Authorisation"),
        (),
        ("Child Seen During Continuous Assessment",),
    ),
    5: (
        "List_5",
        (
            "Strategy discussion initiating Section 47 Enquiry Start Date",
            "Date of Initial Child Protection Conference",
        ),
        ("Was an Initial Child Protection Conference deemed unnecessary?",),
        ("Number of Section 47 Enquiries in the last 12 months",),
    ),
    6: (
        "List_6",
        ("CIN Start Date", "Date Child Was Last Seen", "CIN Closure Date"),
        (),
        ("Case Status", "Primary Need Code", "Reason for Closure"),
    ),
    7: (
        "List_7",
        (
            "Child Protection Plan Start Date",
            "Date of the Last Statutory Visit",
            "Date of latest review conference",
            "Child Protection Plan End Date",
        ),
        (),
        ("Initial Category of Abuse", "Latest Category of Abuse", "Was the Child Seen Alone?"),
    ),
    8: (
        "List_8",
        (
            "Date Started to be Looked After",
            "Date of Latest Statutory Review",
            "Date of Last Social Work Visit",
            "Date Ceased to be Looked After",
            "Start Date of Most Recent Placement",
        ),
        (),
        ("Child's Legal Status", "Placement Type", "Placement Postcode", "Placement Provider"),
    ),
    9: (
        "List_9",
        ("Latest Pathway Plan Review Date",),
        ("Eligibility Category",),
        ("In Touch Category", "Activity Status", "Accommodation Type"),
    ),
}


def build(rows_per_list: int, seed: int = 2026) -> bytes:
    """The workbook's bytes; values are random but repeatable."""
    rng = random.Random(seed)
    workbook = openpyxl.Workbook(write_only=True)
    start = EXTRACTED_ON - timedelta(days=700)

    def some_date() -> object:
        when = start + timedelta(days=rng.randrange(690))
        roll = rng.random()
        if roll < 0.15:
            return None
        if roll < 0.25:
            return when.strftime("%d/%m/%Y")
        return when

    for number, (sheet, dates, others, extras) in LISTS.items():
        worksheet = workbook.create_sheet(sheet)
        headings = ["Child Unique ID", *PERSONAL, *dates, *others, *extras]
        worksheet.append([f"List {number}"])
        worksheet.append([*headings, "Allocated Team", "Allocated Worker"])
        for index in range(rows_per_list):
            worksheet.append(
                [
                    f"C{rng.randrange(10**6):06d}",
                    rng.choice(["a) Male", "b) Female"]),
                    rng.choice(["WBRI", "WIRI", "MWBC", "ASIN", "BAFR"]),
                    date(2008, 1, 1) + timedelta(days=rng.randrange(6000)),
                    rng.randrange(18),
                    rng.choice(["a) Yes", "b) No"]),
                    f"AB{rng.randrange(99)} {rng.randrange(9)}CD",
                    *(some_date() for _ in dates),
                    *(rng.choice(["a) Yes", "b) No", None]) for _ in others),
                    *(f"code {rng.randrange(40)}" for _ in extras),
                    f"Team {index % 12}",
                    f"SW{rng.randrange(400):04d}",
                ]
            )
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def calamine_cells(data: bytes) -> int:
    with CalamineWorkbook.from_filelike(io.BytesIO(data)) as workbook:
        return sum(
            len(workbook.get_sheet_by_name(name).to_python(skip_empty_area=False))
            for name in workbook.sheet_names
        )


def openpyxl_cells(data: bytes) -> int:
    workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        return sum(len(list(sheet.iter_rows(values_only=True))) for sheet in workbook)
    finally:
        workbook.close()


def service_read(data: bytes) -> int:
    result = read_annex_a(data, extracted_on=EXTRACTED_ON)
    return sum(len(read.rows) + read.rows_rejected for read in result.lists)


def archive_check(data: bytes) -> int:
    check_archive(data)
    return 0


def timed(task: Callable[[bytes], int], data: bytes, runs: int) -> dict[str, object]:
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        task(data)
        seconds.append(round(time.perf_counter() - began, 4))
    return {"median_s": statistics.median(seconds), "runs_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000, help="rows per list")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = build(args.rows)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
    assert calamine_cells(data) == openpyxl_cells(data), "engines disagree on the row count"
    report = {
        "workbook": {
            "bytes": len(data),
            "uncompressed_bytes": sum(member.file_size for member in members),
            "largest_compression_ratio": round(
                max(member.file_size / max(member.compress_size, 1) for member in members), 1
            ),
            "lists": sorted(LISTS),
            "rows_per_list": args.rows,
        },
        "engines": {
            "calamine": timed(calamine_cells, data, args.runs),
            "openpyxl_read_only": timed(openpyxl_cells, data, args.runs),
        },
        "read_annex_a_calamine": timed(service_read, data, args.runs),
        "archive_check": timed(archive_check, data, args.runs),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
