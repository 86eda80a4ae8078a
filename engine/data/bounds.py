"""Bounded reading: what python-calamine will allocate for a workbook, checked before it reads it.

calamine builds each sheet as one dense block of (rows x columns) cells spanning its first to its
last non-empty cell, and a failed allocation aborts the whole process (a 100 KB file whose only
stray cell is at XFD1048576 asks for 512 GB). So before calamine opens a workbook,
`check_workbook` checks the parts it reads at open (size, no giant text, no ambiguous copies), and
before it reads a sheet, `check_sheet` streams that sheet's XML and bounds its extent; a sheet over
the cap fails alone with an InputError naming file, sheet and what to do.

The scan emulates calamine as python-calamine 0.9.1 ships it: parts are found as calamine finds
them (`xl/workbook.xml`, its relationships, zip names ignoring ASCII case), positions come from
each `<c r="...">` or, without `r`, from the running row/column, self-closing cells are empty, and
the block spans min..max row and column of the non-empty cells. Ordinary files pass on C-speed
byte scans (~0.08 s per 100k rows); unusual ones, or ones whose quick bound exceeds the cap, get an
exact tag-by-tag walk. Whatever the walk cannot account for is refused, never passed on.
"""

from __future__ import annotations

import functools
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.data.errors import InputError

CHUNK = 8 << 20  # bytes of XML scanned at a time
MAX_RUN = 8 << 20  # longest text or tag without a '<' (an Excel cell holds at most 32,767 chars)
# The parts calamine reads when it opens a workbook, and the most uncompressed bytes of each.
OPEN_PARTS = {
    "xl/workbook.xml": 64 << 20,
    "xl/_rels/workbook.xml.rels": 64 << 20,
    "xl/styles.xml": 256 << 20,
    "xl/sharedStrings.xml": 1 << 30,
}
EXCEL_ROWS, EXCEL_COLUMNS = 1_048_576, 16_384
_CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls / encrypted workbook container
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")

_NAME = rb"(?:[A-Za-z_][\w.\-]*:)?"  # an optional namespace prefix
_ATTRS = rb"((?:[^>\"']|\"[^\"]*\"|'[^']*')*)"  # attributes, quotes may hold '>'
_TAG = re.compile(rb"<(/?)" + _NAME + rb"(row|c)(?=[\s/>])" + _ATTRS + rb">")
_SHEET_TAG = re.compile(rb"<" + _NAME + rb"sheet(?=[\s/>])" + _ATTRS + rb">")
_REL_TAG = re.compile(rb"<" + _NAME + rb"Relationship(?=[\s/>])" + _ATTRS + rb">")
_ATTR = re.compile(rb"([^\s=/]+)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")
_NOT_MARKUP = re.compile(
    rb"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|<!DOCTYPE(?:[^\[>]|\[.*?\])*>", re.S
)
_REF = re.compile(rb"([A-Za-z]{1,3})([0-9]{1,7})")
_ODD_CELL = re.compile(rb"<c(?:[\t\r\n/>]| (?!r=\"))")  # a cell start not written `<c r="`
_PREFIXED_CELL = re.compile(rb":c[\s/>]")
_COLUMNS = re.compile(rb"<c r=\"([A-Za-z]+)")
_DIGITS = [re.compile(rb"<c r=\"[A-Za-z]{1,3}[0-9]{%d}" % d) for d in range(1, 9)]
# A cell right of column D, or one whose row number has more than d digits (index d).
_UNUSUAL = [
    re.compile(rb"<c r=\"(?:[E-Ze-z]|[A-Za-z]{2}|[A-Za-z][0-9]{%d})" % (d + 1)) for d in range(9)
]
_ENTITY = re.compile(r"&(lt|gt|amp|apos|quot|#[0-9]+|#x[0-9A-Fa-f]+);")
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "apos": "'", "quot": '"'}


class _Refused(Exception):
    """The scan cannot vouch for a part: the message says why."""


@dataclass(frozen=True)
class Extent:
    """A sheet's non-empty cells as calamine sees them: the block they span and their count."""

    rows: int
    columns: int
    cells: int
    last_cell: str  # bottom-right corner of the block, e.g. "XFD1048576"
    exact: bool  # False: an upper bound from the quick scan

    @property
    def block(self) -> int:
        """Cells calamine allocates: rows x columns."""
        return self.rows * self.columns


def check_workbook(path: str | Path) -> dict[str, zipfile.ZipInfo | None]:
    """Refuse a workbook calamine could not open safely; return sheet name -> its XML part
    (None when the part is missing: calamine then reports the sheet as not found)."""
    path = Path(path)
    stat = os.stat(path)
    return _checked_workbook(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _checked_workbook(path: str, size: int, mtime_ns: int) -> dict[str, zipfile.ZipInfo | None]:
    where = f"workbook {path}"
    with open(path, "rb") as handle:
        if handle.read(len(_CFB_MAGIC)) == _CFB_MAGIC:
            raise InputError(
                f"{where} is an encrypted or legacy Excel container, not a plain .xlsx; "
                "open it in Excel, remove the password and save it as .xlsx"
            )
    try:
        with zipfile.ZipFile(path) as archive:
            parts = _parts_by_name(archive)
        texts = {}
        for part, limit in OPEN_PARTS.items():
            info = _one_part(parts, part)
            if info is not None:
                pieces = _xml_pieces(path, info, limit)
                if part == "xl/sharedStrings.xml":
                    for _ in pieces:  # only checked: it may be large
                        pass
                else:
                    texts[part] = b"".join(pieces)
        return _sheet_parts(parts, texts)
    except _Refused as exc:
        raise InputError(f"{where}: {exc}; re-save it from Excel as .xlsx") from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, struct.error) as exc:
        raise InputError(
            f"{where} is not a readable .xlsx file ({type(exc).__name__}: {exc}); "
            "re-save it from Excel as .xlsx"
        ) from None


def check_sheet(path: str | Path, sheet: str, max_cells: int) -> Extent | None:
    """Raise InputError if reading `sheet` would take more than `max_cells` cells (rows x columns)
    or cannot be bounded; else the sheet's extent (None when it has no XML part to read)."""
    where = f"workbook {path}, sheet {sheet!r}"
    parts = check_workbook(path)
    if sheet not in parts:
        raise InputError(
            f"{where}: its XML part cannot be located the way the reader would find it; "
            "re-save the workbook from Excel"
        )
    info = parts[sheet]
    if info is None:
        return None
    try:
        extent = _quick_extent(str(Path(path).resolve()), info)
        if extent is None or extent.block > max_cells or extent.cells > max_cells:
            extent = _exact_extent(str(Path(path).resolve()), info)
    except (_Refused, zlib.error, OSError, struct.error) as exc:
        raise InputError(
            f"{where}: {exc}; re-save the workbook from Excel, or leave the sheet out"
        ) from None
    if extent.block > max_cells or extent.cells > max_cells:
        raise InputError(
            f"{where}: its cells span {extent.rows:,} rows x {extent.columns:,} columns "
            f"({extent.block:,} cells, last cell {extent.last_cell}), more than the "
            f"{max_cells:,} cells mmflow reads from one sheet; delete the stray cells outside the "
            "Dates, Type, Price, Size columns (Ctrl+End in Excel shows the last cell) and save "
            "again, or raise MMFLOW_MAX_SHEET_CELLS"
        )
    return extent


def _quick_extent(path: str, info: zipfile.ZipInfo) -> Extent | None:
    """An upper bound from a few byte scans, or None when the sheet is unusual (exact walk needed).
    Every cell must be written `<c r="...">` (what Excel, openpyxl and LibreOffice write)."""
    size, digits, columns = 0, 0, 0
    for piece in _sheet_data(path, info):
        size += len(piece)
        if _ODD_CELL.search(piece) or _PREFIXED_CELL.search(piece):
            return None  # cells without `r`, with other spacing, or prefixed (<x:c>)
        if b'<c r="' not in piece:
            continue
        columns = max(columns, 4)
        if _UNUSUAL[digits].search(piece):  # right of column D, or a longer row number
            letters = set(_COLUMNS.findall(piece))
            if any(len(word) > 3 for word in letters):
                return None
            columns = max(columns, *(_column_number(word) for word in letters))
            while digits < len(_DIGITS) and _DIGITS[digits].search(piece):
                digits += 1
            if digits > 7:
                return None
    rows = 10**digits - 1  # 7 digits: up to 9,999,999, past Excel's last row (the walk refuses it)
    cells = size // len(b'<c r="A1"></c>')  # each value cell takes at least these bytes
    return Extent(rows, columns, cells, f"{_column_letters(columns)}{rows}", exact=False)


def _exact_extent(path: str, info: zipfile.ZipInfo) -> Extent:
    """Walk every row and cell tag as calamine does; the block of the non-empty cells."""
    row_index = col_index = cells = 0
    low_row = low_col = 1 << 62
    high_row = high_col = -1
    for piece in _sheet_data(path, info):
        for match in _TAG.finditer(piece):
            closing, name, attrs = match.groups()
            self_closing = attrs.rstrip().endswith(b"/")
            if name == b"row":
                if not closing:
                    ref = _attribute(attrs, b"r")
                    if ref is not None:
                        row_index = _row_number(ref) - 1
                if closing or self_closing:
                    row_index, col_index = row_index + 1, 0
                continue
            if closing:
                continue
            ref = _attribute(attrs, b"r")
            if ref is not None:
                row, col = _cell_position(ref)
                col_index = col
            else:
                row, col = row_index, col_index
            if not self_closing:  # a self-closing cell holds no value
                cells += 1
                low_row, high_row = min(low_row, row), max(high_row, row)
                low_col, high_col = min(low_col, col), max(high_col, col)
            col_index += 1
    if cells == 0:
        return Extent(0, 0, 0, "-", exact=True)
    rows, columns = high_row - low_row + 1, high_col - low_col + 1
    return Extent(rows, columns, cells, f"{_column_letters(high_col + 1)}{high_row + 1}", True)


def _sheet_data(path: str, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The sheet's XML from the first `sheetData` on (calamine reads no cell before it)."""
    started = False
    for piece in _xml_pieces(path, info, None):
        if not started:
            at = piece.find(b"sheetData")
            if at < 0:
                continue
            started, piece = True, piece[at:]
        yield piece


def _xml_pieces(path: str, info: zipfile.ZipInfo, limit: int | None) -> Iterator[bytes]:
    """A zip part's XML in pieces that each end just before a '<' (no tag is split)."""
    carry, total, first = b"", 0, True
    for data in _inflate(path, info):
        if first:
            if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4]:
                raise _Refused(f"part {info.filename} is UTF-16 XML, which mmflow does not read")
            first = False
        total += len(data)
        if limit is not None and total > limit:
            raise _Refused(f"part {info.filename} is larger than {limit:,} bytes")
        buffer = carry + data
        cut = buffer.rfind(b"<")
        if cut > 0:
            yield buffer[:cut]
            buffer = buffer[cut:]
        if len(buffer) > MAX_RUN:
            raise _Refused(f"part {info.filename} holds a text or tag over {MAX_RUN:,} bytes long")
        carry = buffer
    if carry:
        yield carry


def _inflate(path: str, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """The part's bytes, inflated from its stored compressed size with no limit on the output
    (as calamine's zip reader does; Python's zipfile would stop at the declared size)."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _Refused(f"part {info.filename} uses zip compression method {info.compress_type}")
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        header = _LOCAL_HEADER.unpack(handle.read(_LOCAL_HEADER.size))
        if header[0] != b"PK\x03\x04":
            raise _Refused(f"part {info.filename} has a broken zip header")
        handle.seek(header[9] + header[10], os.SEEK_CUR)  # file name and extra field
        left = info.compress_size
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        while left > 0:
            raw = handle.read(min(left, 1 << 20))
            if not raw:
                raise _Refused(f"part {info.filename} is truncated")
            left -= len(raw)
            if info.compress_type == zipfile.ZIP_STORED:
                yield raw
                continue
            while True:  # bounded output per step: a small input may inflate a thousandfold
                out = inflater.decompress(raw, CHUNK)
                if out:
                    yield out
                raw = inflater.unconsumed_tail
                if not raw and len(out) < CHUNK:
                    break


def _parts_by_name(archive: zipfile.ZipFile) -> dict[bytes, list[zipfile.ZipInfo]]:
    """Zip members by ASCII-lower-cased name (calamine finds parts ignoring ASCII case)."""
    parts: dict[bytes, list[zipfile.ZipInfo]] = {}
    for info in archive.infolist():
        key = info.filename.encode("utf-8", "surrogateescape").lower()
        parts.setdefault(key, []).append(info)
    return parts


def _one_part(parts: dict, name: str) -> zipfile.ZipInfo | None:
    """The single member for a part name; two candidates are refused (which would calamine read?)."""
    found = parts.get(name.encode().lower(), [])
    if len(found) > 1:
        raise _Refused(f"it holds {len(found)} copies of part {name}")
    return found[0] if found else None


def _sheet_parts(parts: dict, texts: dict[str, bytes]) -> dict[str, zipfile.ZipInfo | None]:
    """Sheet name -> its XML part, resolved from the workbook and its relationships as calamine
    does (names unescaped, targets taken literally, relative targets under `xl/`)."""
    workbook = texts.get("xl/workbook.xml")
    rels = texts.get("xl/_rels/workbook.xml.rels")
    if workbook is None or rels is None:
        return {}  # calamine refuses such a file itself, before reading any sheet
    targets: dict[bytes, bytes] = {}
    for attrs in _REL_TAG.findall(_NOT_MARKUP.sub(b"", rels)):
        values = _attributes(attrs)
        targets[values.get(b"Id", b"")] = values.get(b"Target", b"")  # the last one wins
    out: dict[str, zipfile.ZipInfo | None] = {}
    for attrs in _SHEET_TAG.findall(_NOT_MARKUP.sub(b"", workbook)):
        values = _attributes(attrs)
        name = _unescape(values.get(b"name", b"").decode("utf-8", "replace"))
        if name in out:
            raise _Refused(f"it lists two sheets named {name!r}")
        rel = values.get(b"r:id", values.get(b"relationships:id"))
        target = targets.get(rel, b"") if rel is not None else b""
        if target.startswith(b"/xl/"):
            target = target[1:]
        elif not target.startswith(b"xl/"):
            target = b"xl/" + target
        found = parts.get(target.lower(), [])
        if len(found) > 1:
            raise _Refused(f"it holds {len(found)} copies of the part of sheet {name!r}")
        out[name] = found[0] if found else None
    return out


def _attributes(attrs: bytes) -> dict[bytes, bytes]:
    """Raw attribute values by literal name (a repeated attribute is refused, as by calamine)."""
    values: dict[bytes, bytes] = {}
    for key, double, single in _ATTR.findall(attrs):
        if key in values:
            raise _Refused(f"an element repeats the attribute {key.decode(errors='replace')}")
        values[key] = double or single
    return values


def _attribute(attrs: bytes, key: bytes) -> bytes | None:
    """One raw attribute value of a row or cell tag (the literal name `r`, no prefix)."""
    for name, double, single in _ATTR.findall(attrs):
        if name == key:
            return double or single
    return None


def _unescape(text: str) -> str:
    """XML's predefined entities and character references (unknown entities stay as written)."""

    def one(match: re.Match) -> str:
        word = match.group(1)
        if word.startswith("#x"):
            return chr(int(word[2:], 16)) if int(word[2:], 16) < 0x110000 else match.group(0)
        if word.startswith("#"):
            return chr(int(word[1:])) if int(word[1:]) < 0x110000 else match.group(0)
        return _ENTITIES[word]

    return _ENTITY.sub(one, text)


def _cell_position(ref: bytes) -> tuple[int, int]:
    """0-based (row, column) of a cell reference such as `B7`; anything else is refused."""
    match = _REF.fullmatch(ref)
    if match is None:
        raise _Refused(f"a cell has the reference {ref[:20]!r}, not a cell such as B7")
    row, column = int(match.group(2)), _column_number(match.group(1))
    if not (1 <= row <= EXCEL_ROWS and 1 <= column <= EXCEL_COLUMNS):
        raise _Refused(f"cell {ref.decode()} lies outside Excel's grid")
    return row - 1, column - 1


def _row_number(ref: bytes) -> int:
    """The 1-based row of a `<row r="...">` (digits, optionally after column letters)."""
    match = re.fullmatch(rb"[A-Za-z]{0,3}([0-9]{1,7})", ref)
    if match is None or not 1 <= int(match.group(1)) <= EXCEL_ROWS:
        raise _Refused(f"a row has the reference {ref[:20]!r}, not a row number of Excel")
    return int(match.group(1))


def _column_number(letters: bytes) -> int:
    """1-based column of `A`..`XFD` (case-insensitive)."""
    number = 0
    for char in letters.upper():
        number = number * 26 + char - 64
    return number


def _column_letters(number: int) -> str:
    """`A` for 1, `XFD` for 16384."""
    letters = ""
    while number > 0:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return letters or "A"
