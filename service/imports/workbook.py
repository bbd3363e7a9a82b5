"""Open an uploaded .xlsx safely and hand back each sheet's cell values.

An upload is hostile until shown otherwise, so the archive is checked before any spreadsheet
parser sees it: the zip directory's declared sizes, entry count and compression ratios are
bounded; every member is then inflated here, in bounded steps, to prove it expands to exactly
its declared size with a matching CRC (a directory that under-declares would otherwise let the
parser inflate far more than was checked); and every XML part is scanned for ``<!DOCTYPE`` /
``<!ENTITY`` and must be UTF-8, so entity tricks cannot hide in another encoding.

Engine: python-calamine (Rust). ``bench/annex_a_read.py`` times it against openpyxl's read-only
mode on a workbook holding lists 3-9 with 5,000 rows each and the personal-data columns: to
turn every sheet into Python rows calamine took a median 0.28-0.30 s, openpyxl 5.5-7.8 s (20x
or more slower); the whole Annex A read, these checks (0.035 s) included, about 0.5 s. Calamine
also ships type hints and needs no XML library of its own (it does not expand entities; the
scan above refuses them anyway). It returns formula cells' cached values (a formula saved
without one reads as blank), turns date-formatted numbers into ``date``/``datetime``
(honouring the 1904 date system), returns other numbers as ``float``, and blank and error cells
(``#N/A``) as ``""``.
"""

from __future__ import annotations

import io
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from python_calamine import CalamineError, CalamineWorkbook

MAX_UNCOMPRESSED_BYTES = 200 * 1024 * 1024
MAX_ENTRIES = 10_000
MAX_COMPRESSION_RATIO = 100
# Small parts (styles, shared strings of a tiny workbook) may compress far better than 100:1
# without being a threat; the ratio is only judged on members above this size.
RATIO_CHECK_FROM_BYTES = 1024 * 1024

_CHUNK = 1024 * 1024
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
_LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
_XML_SUFFIXES = (".xml", ".rels", ".vml")
_DECLARATION = re.compile(rb"(?i:<!(?:doctype|entity))")
_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")

CellValue = int | float | str | bool | date | datetime | time | timedelta


class WorkbookError(Exception):
    """The upload cannot be read as a workbook; ``detail`` is safe to show to the uploader."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Sheet:
    """One worksheet's values; ``rows[i][j]`` is Excel row ``i + 1``, column ``j + 1``."""

    name: str
    rows: list[list[CellValue]]


def read_sheets(data: bytes, *, rows: int | None = None) -> Iterator[Sheet]:
    """Check the archive, then yield the sheets one at a time, in workbook order (each one's
    first `rows` rows only, when given).

    The checks run before the first sheet is yielded; any failure, then or while a sheet is
    parsed, raises :class:`WorkbookError`.
    """
    check_archive(data)
    try:
        with CalamineWorkbook.from_filelike(io.BytesIO(data)) as workbook:
            for name in workbook.sheet_names:
                values = workbook.get_sheet_by_name(name).to_python(
                    skip_empty_area=False, nrows=rows
                )
                yield Sheet(name=name, rows=values)
    except CalamineError as exc:
        raise WorkbookError(f"the workbook could not be read: {exc}") from exc


def check_archive(data: bytes) -> None:
    """Raise :class:`WorkbookError` unless ``data`` is a sound, bounded .xlsx archive."""
    if not data.startswith(b"PK"):
        raise WorkbookError(
            "not an .xlsx workbook: the file is not a zip archive (a CSV or .xls file renamed "
            ".xlsx, or a password-protected workbook, cannot be read)"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as exc:
        # What zipfile raises for a damaged or exotic central directory.
        raise WorkbookError(f"corrupt zip archive: {exc}") from exc
    _check_directory(members)
    if not any(member.filename == "xl/workbook.xml" for member in members):
        raise WorkbookError("not an .xlsx workbook: the archive has no xl/workbook.xml part")
    for member in members:
        _verify_member(data, member)


def _check_directory(members: list[zipfile.ZipInfo]) -> None:
    """Bound what the archive claims before inflating any of it."""
    if len(members) > MAX_ENTRIES:
        raise WorkbookError(
            f"the archive has {len(members)} entries (at most {MAX_ENTRIES} are accepted)"
        )
    total = sum(member.file_size for member in members)
    if total > MAX_UNCOMPRESSED_BYTES:
        raise WorkbookError(
            f"the archive expands to {total} bytes (at most {MAX_UNCOMPRESSED_BYTES} are accepted)"
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_CHECK_FROM_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise WorkbookError(
                f"archive member {member.filename} is compressed {ratio:.0f}:1 "
                f"(at most {MAX_COMPRESSION_RATIO}:1 is accepted)"
            )


def _verify_member(data: bytes, member: zipfile.ZipInfo) -> None:
    """Inflate one member in bounded steps: exact declared size, matching CRC, safe XML."""
    chunks = _inflate(data, member)
    is_xml = member.filename.lower().endswith(_XML_SUFFIXES)
    size = 0
    crc = 0
    tail = b""
    for chunk in chunks:
        if is_xml and size == 0:
            _check_encoding(member.filename, chunk)
        size += len(chunk)
        if size > member.file_size:
            raise WorkbookError(
                f"archive member {member.filename} expands beyond its declared size"
            )
        crc = zlib.crc32(chunk, crc)
        if is_xml:
            if _DECLARATION.search(tail + chunk):
                raise WorkbookError(
                    f"archive member {member.filename} holds an XML DOCTYPE or ENTITY "
                    "declaration, which workbooks never need"
                )
            tail = (tail + chunk)[-16:]
    if size != member.file_size or crc != member.CRC:
        raise WorkbookError(f"corrupt zip archive: member {member.filename} fails its size or CRC")


def _inflate(data: bytes, member: zipfile.ZipInfo) -> Iterator[bytes]:
    """Yield the member's content in chunks of at most ``_CHUNK`` bytes."""
    if member.flag_bits & 0x1:
        raise WorkbookError("the workbook is encrypted")
    start = member.header_offset
    header = data[start : start + _LOCAL_HEADER.size]
    if len(header) < _LOCAL_HEADER.size or not header.startswith(_LOCAL_HEADER_SIGNATURE):
        raise WorkbookError(f"corrupt zip archive: member {member.filename} has no local header")
    *_, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    begin = start + _LOCAL_HEADER.size + name_length + extra_length
    compressed = data[begin : begin + member.compress_size]
    if len(compressed) < member.compress_size:
        raise WorkbookError(f"corrupt zip archive: member {member.filename} is truncated")
    if member.compress_type == zipfile.ZIP_STORED:
        for offset in range(0, len(compressed), _CHUNK):
            yield compressed[offset : offset + _CHUNK]
        return
    if member.compress_type != zipfile.ZIP_DEFLATED:
        raise WorkbookError(
            f"archive member {member.filename} uses a compression method .xlsx files do not use"
        )
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    source = memoryview(compressed)
    position = 0
    try:
        while not inflater.eof:
            # Bounded input and output per step, however much the data claims to expand.
            piece = source[position : position + _CHUNK]
            chunk = inflater.decompress(piece, _CHUNK)
            position += len(piece) - len(inflater.unconsumed_tail)
            if not piece and not chunk:
                return  # input ran out before the stream ended: the size check reports it
            if chunk:
                yield chunk
    except zlib.error as exc:
        raise WorkbookError(f"corrupt zip archive: member {member.filename}: {exc}") from exc


def _check_encoding(name: str, head: bytes) -> None:
    """Refuse XML that is not UTF-8: other encodings could hide a DOCTYPE from the scan."""
    declared = _ENCODING.match(head)
    not_utf8 = declared is not None and declared.group(1).lower() not in (b"utf-8", b"utf8")
    if b"\x00" in head[:4] or head.startswith((b"\xff\xfe", b"\xfe\xff")) or not_utf8:
        raise WorkbookError(f"archive member {name} is not UTF-8 encoded XML")
