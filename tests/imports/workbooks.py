"""Build Annex A test workbooks (.xlsx bytes) with openpyxl, and damage them on purpose.

Every value here is invented; never put a real authority's file in the tests.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import openpyxl  # type: ignore[import-untyped]
from openpyxl.utils import get_column_letter  # type: ignore[import-untyped]
from openpyxl.utils.datetime import CALENDAR_MAC_1904  # type: ignore[import-untyped]

_PERSONAL = ("Gender", "Ethnicity", "Date of Birth", "Age of Child (Years)", "Disability")

# The 2019 template's headings (plus the 2023 pathway plan column in List 9), personal-data
# columns included so tests can prove they are never read.
TEMPLATE_HEADINGS: dict[int, tuple[str, ...]] = {
    1: ("Child Unique ID", *_PERSONAL, "Date of Contact", "Contact Source"),
    2: (
        "Child Unique ID",
        *_PERSONAL,
        "Assessment start date",
        "Assessment completion date",
        "Organisation completing assessment",
    ),
    3: (
        "Child Unique ID",
        *_PERSONAL,
        "Date of referral",
        "Referral Source",
        "Referral NFA?",
        "Number of Referrals in Last 12 Months",
        "Allocated Team",
        "Allocated Worker",
    ),
    4: (
        "Child Unique ID",
        *_PERSONAL,
        "Continuous Assessment Start Date",
        "Child Seen During Continuous Assessment",
        "Continuous Assessment Date of Authorisation",
        "Was the child assessed as requiring LA children's social care support?",
        "Allocated Team",
        "Allocated Worker",
    ),
    5: (
        "Child Unique ID",
        *_PERSONAL,
        "Strategy discussion initiating Section 47 Enquiry Start Date",
        "Was an Initial Child Protection Conference deemed unnecessary?",
        "Date of Initial Child Protection Conference",
        "Did the Initial Child Protection Conference Result in a Child Protection Plan",
        "Number of Section 47 Enquiries in the last 12 months",
        "Allocated Team",
        "Allocated Worker",
    ),
    6: (
        "Child Unique ID",
        *_PERSONAL,
        "Case Status",
        "CIN Start Date",
        "Primary Need Code",
        "Date Child Was Last Seen",
        "CIN Closure Date",
        "Reason for Closure",
        "Allocated Team",
        "Allocated Worker",
    ),
    7: (
        "Child Unique ID",
        *_PERSONAL,
        "Child Protection Plan Start Date",
        "Initial Category of Abuse",
        "Latest Category of Abuse",
        "Date of the Last Statutory Visit",
        "Was the Child Seen Alone?",
        "Date of latest review conference",
        "Child Protection Plan End Date",
        "Number of Previous Child Protection Plans",
        "Allocated Team",
        "Allocated Worker",
    ),
    8: (
        "Child Unique ID",
        *_PERSONAL,
        "UASC",
        "Date Started to be Looked After",
        "Child's Legal Status",
        "Date of Latest Statutory Review",
        "Date of Last Social Work Visit",
        "Date of Latest Health Assessment",
        "Date Ceased to be Looked After",
        "Placement Type",
        "Start Date of Most Recent Placement",
        "Placement Postcode",
        "Placement Provider",
        "Allocated Team",
        "Allocated Worker",
    ),
    9: (
        "Child Unique ID",
        *_PERSONAL,
        "Eligibility Category",
        "In Touch Category",
        "Activity Status",
        "Accommodation Type",
        "Latest Pathway Plan Review Date",
        "Allocated Team",
        "Allocated Personal Advisor",
    ),
    10: (
        "Child Unique ID",
        *_PERSONAL,
        "Date of Decision that Child Should be Placed for Adoption",
        "Date of Placement Order",
        "Date of Adoption Order",
    ),
    # List 11 shares "Date of Adoption Order" with List 10.
    11: (
        "Individual Adopter Identifier",
        "Date Enquiry Received",
        "Date Stage 1 Started",
        "Date Stage 1 Ended",
        "Date Stage 2 Started",
        "Date Stage 2 Ended",
        "Date Application Submitted",
        "Date Application Approved",
        "Date Adopter Matched with Child(ren)",
        "Date Child/Children Placed with Adopter(s)",
        "Date of Adoption Order",
        "Date of Leaving Adoption Process",
    ),
}

LIST_TITLES: dict[int, str] = {
    1: "Contacts",
    2: "Early Help",
    3: "Referrals",
    4: "Assessments",
    5: "Section 47 Enquiries and ICPCs",
    6: "Children in Need",
    7: "Child Protection",
    8: "Children in Care",
    9: "Care Leavers",
    10: "Adoption",
    11: "Adopters",
}


@dataclass(frozen=True)
class DateFormula:
    """A formula cell formatted as a date (Excel shows its cached value as a date)."""

    formula: str


@dataclass(frozen=True)
class SheetSpec:
    """One sheet: an optional title row, then the header row, then the data rows."""

    name: str
    headings: Sequence[str]
    rows: Sequence[Sequence[object]] = ()
    title: str | None = None


def annex_a_sheet(
    list_number: int,
    rows: Sequence[Mapping[str, object]] = (),
    *,
    template_layout: bool = True,
    name: str | None = None,
    headings: Sequence[str] | None = None,
) -> SheetSpec:
    """A sheet for one list; each row maps a heading to its value (absent headings: blank).

    The template layout names the sheet ``List_N`` with a title row above the headings; the
    other layout names it after the list, headings on row 1.
    """
    heads = tuple(headings or TEMPLATE_HEADINGS[list_number])
    unknown = {key for row in rows for key in row} - set(heads)
    assert not unknown, f"rows name headings the sheet lacks: {sorted(unknown)}"
    title = LIST_TITLES[list_number]
    return SheetSpec(
        name=name or (f"List_{list_number}" if template_layout else title),
        headings=heads,
        rows=[[row.get(heading) for heading in heads] for row in rows],
        title=f"List {list_number}: {title}" if template_layout else None,
    )


def template_cell(list_number: int, heading: str, row: int) -> str:
    """The reference (e.g. ``"G3"``) of ``heading`` on Excel row ``row`` of a template sheet."""
    return f"{get_column_letter(TEMPLATE_HEADINGS[list_number].index(heading) + 1)}{row}"


def build_workbook(*sheets: SheetSpec, date1904: bool = False) -> bytes:
    """The .xlsx bytes of a workbook holding ``sheets`` in order."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    if date1904:
        workbook.epoch = CALENDAR_MAC_1904
    for spec in sheets:
        worksheet = workbook.create_sheet(spec.name)
        if spec.title is not None:
            worksheet.append([spec.title])
        worksheet.append(list(spec.headings))
        first = 2 if spec.title is None else 3
        for number, row in enumerate(spec.rows, start=first):
            worksheet.append([_formula(cell) for cell in row])
            # By row number: asking the sheet for its last row counts every cell, each row.
            for column, value in enumerate(row, start=1):
                if isinstance(value, DateFormula):
                    worksheet.cell(row=number, column=column).number_format = "dd/mm/yyyy"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _formula(value: object) -> object:
    return value.formula if isinstance(value, DateFormula) else value


def rewrite_part(data: bytes, part: str, transform: Callable[[bytes], bytes]) -> bytes:
    """Replace one archive member's content with ``transform(content)``."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        return _rezip(source, {part: transform(source.read(part))}, {})


def damage_member(data: bytes, part: str) -> bytes:
    """Overwrite bytes in the middle of one member's compressed data."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo(part)
    name_length, extra_length = struct.unpack_from("<2H", data, info.header_offset + 26)
    begin = info.header_offset + 30 + name_length + extra_length
    middle = begin + info.compress_size // 2
    return data[:middle] + b"\xff" * 16 + data[middle + 16 :]


def with_cached_value(
    data: bytes, ref: str, value: str, *, type_: str | None = None, part: str = ""
) -> bytes:
    """Give formula cell ``ref`` the cached value Excel would have saved (openpyxl saves none).

    ``type_`` is the cell's ``t`` attribute, e.g. ``"str"`` for a text result.
    """
    part = part or "xl/worksheets/sheet1.xml"
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        xml = source.read(part).decode()
        cell = re.compile(rf'<c r="{ref}"([^>]*)>(<f>.*?</f>)<v\s*/>')
        attribute = f' t="{type_}"' if type_ else ""
        patched, count = cell.subn(
            lambda match: f'<c r="{ref}"{match[1]}{attribute}>{match[2]}<v>{value}</v>', xml
        )
        assert count == 1, f"no formula cell {ref} without a cached value in {part}"
        return _rezip(source, {part: patched.encode()}, {})


def with_member(data: bytes, name: str, content: bytes) -> bytes:
    """Add a deflated member to the archive."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        return _rezip(source, {}, extra={name: content})


def declare_size(data: bytes, part: str, size: int) -> bytes:
    """Overwrite the uncompressed size the zip's central directory declares for ``part``."""
    end = data.rfind(b"PK\x05\x06")
    (directory,) = struct.unpack_from("<L", data, end + 16)
    patched = bytearray(data)
    offset = directory
    while patched[offset : offset + 4] == b"PK\x01\x02":
        name_length, extra_length, comment_length = struct.unpack_from("<3H", data, offset + 28)
        name = data[offset + 46 : offset + 46 + name_length].decode()
        if name == part:
            struct.pack_into("<L", patched, offset + 24, size)
            return bytes(patched)
        offset += 46 + name_length + extra_length + comment_length
    raise AssertionError(f"{part} not in the central directory")


def many_members(count: int) -> bytes:
    """A workbook-looking zip with ``count`` tiny members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", b"<workbook/>")
        for index in range(count - 1):
            archive.writestr(f"xl/media/image{index}.png", b"")
    return buffer.getvalue()


def _rezip(
    source: zipfile.ZipFile, replaced: Mapping[str, bytes], extra: Mapping[str, bytes]
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            name = info.filename
            target.writestr(info, replaced[name] if name in replaced else source.read(info))
        for name, content in extra.items():
            target.writestr(name, content)
    return buffer.getvalue()
