"""Read the record files: typed records that remember their file and line, and every problem.

The people who keep the records edit spreadsheets. This stage must tell them everything that is
wrong in one run, each problem with file, line and column in plain words, and never a traceback:
malformed CSV, missing or unknown columns, invalid UTF-8, bad years, dates, URLs or region codes,
duplicate ids and references to records that do not exist.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from .iris import ID_PATTERN
from .regions import REGIONS

SEPARATOR = ";"
_YEAR = re.compile(r"^\d{4}$")
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_SIREN = re.compile(r"^\d{9}$")
_QID = re.compile(r"^Q[1-9]\d*$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")
_SPACE = re.compile(r"\s")


@dataclass(frozen=True, order=True)
class Problem:
    """One thing to fix, located where the person who made it will look."""

    file: str
    line: int  # 0: the file as a whole
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f'column "{self.column}": ' if self.column else ""
        return f"{where}: {what}{self.message}"


@dataclass(frozen=True)
class Column:
    """One column of a record file: its kind of value and what it may refer to."""

    name: str
    kind: str  # id text url year date region concept ref number integer siren wikidata source
    required: bool = False
    many: bool = False
    refs: tuple[str, ...] = ()
    scheme: str | None = None


@dataclass(frozen=True)
class RecordType:
    name: str
    file: str
    columns: tuple[Column, ...]
    required_file: bool = False

    def column(self, name: str) -> Column:
        return self._by_name[name]

    @property
    def _by_name(self) -> dict[str, Column]:
        return _COLUMNS_BY_NAME.setdefault(self.name, {c.name: c for c in self.columns})


def _c(name: str, kind: str = "text", **kw: Any) -> Column:
    return Column(name, kind, **kw)


_COLUMNS_BY_NAME: dict[str, dict[str, Column]] = {}
_ID = _c("id", "id", required=True)
_NAME = _c("name", required=True)
_SOURCE = _c("source", "source", required=True, many=True)
_ACTORS = ("lab", "institution")

SCHEMA: dict[str, RecordType] = {
    t.name: t
    for t in (
        RecordType(
            "lab",
            "labs.csv",
            (
                _ID,
                _NAME,
                _c("alt_names", many=True),
                _c("hosts", "ref", required=True, many=True, refs=("institution",)),
                _c("kind", "concept", scheme="administration-kind"),
                _c("region", "region"),
                _c("cities", many=True),
                _c("founded", "year"),
                _c("website", "url"),
                _c("skills", "concept", many=True, scheme="skill"),
                _c("description"),
                _SOURCE,
            ),
            required_file=True,
        ),
        RecordType(
            "institution",
            "institutions.csv",
            (
                _ID,
                _NAME,
                _c("alt_names", many=True),
                _c("kind", "concept", scheme="administration-kind"),
                _c("region", "region"),
                _c("parent", "ref", refs=("institution",)),
                _c("website", "url"),
                _c("siren", "siren"),
                _c("wikidata", "wikidata"),
                _SOURCE,
            ),
            required_file=True,
        ),
        RecordType(
            "project",
            "projects.csv",
            (
                _ID,
                _NAME,
                _c("kind", "concept", scheme="project-kind"),
                _c("carried_by", "ref", required=True, many=True, refs=_ACTORS),
                _c("partners", "ref", many=True, refs=_ACTORS),
                _c("started", "date"),
                _c("website", "url"),
                _c("description"),
                _SOURCE,
            ),
        ),
        RecordType(
            "event",
            "events.csv",
            (
                _ID,
                _NAME,
                _c("kind", "concept", scheme="event-kind"),
                _c("part_of", "ref", refs=("event",)),
                _c("edition", "integer"),
                _c("start", "date"),
                _c("end", "date"),
                _c("organizers", "ref", many=True, refs=_ACTORS),
                _c("about", "ref", many=True, refs=("lab", "project", "institution", "event")),
                _c("region", "region"),
                _c("location"),
                _c("theme"),
                _c("website", "url"),
                _c("description"),
                _SOURCE,
            ),
        ),
        RecordType(
            "figure",
            "figures.csv",
            (
                _ID,
                _c("about", "ref", required=True, refs=("lab", "institution", "project", "event")),
                _c("measure", "concept", required=True, scheme="measure"),
                _c("value", "number", required=True),
                _c("qualifier", "concept", scheme="qualifier"),
                _c("date", "date", required=True),
                _c("label"),
                _SOURCE,
            ),
        ),
        RecordType(
            "source",
            "sources.csv",
            (
                _ID,
                _c("title", required=True),
                _c("publisher", "ref", refs=("institution",)),
                _c("date", "date"),
                _c("url", "url"),
                _c("note"),
            ),
        ),
    )
}


@dataclass(frozen=True)
class Record:
    """One row, typed, with the place it came from."""

    type: str
    id: str
    file: str
    line: int
    values: Mapping[str, Any] = field(hash=False)
    digest: str = ""

    def get(self, column: str, default: Any = None) -> Any:
        return self.values.get(column, default)

    def refs(self) -> Iterable[str]:
        """Ids of every record this one points to (for dependency tracking)."""
        for col in SCHEMA[self.type].columns:
            if col.kind in ("ref", "source") and col.name in self.values:
                value = self.values[col.name]
                yield from value if col.many else (value,)


@dataclass
class Records:
    """Every record read, by id, with the problems found."""

    records: list[Record]
    problems: list[Problem]

    @property
    def by_id(self) -> dict[str, Record]:
        return {r.id: r for r in self.records}

    def of_type(self, type_: str) -> list[Record]:
        return [r for r in self.records if r.type == type_]


def read(
    data_dir: Path,
    schemes: Mapping[str, frozenset[str]],
    *,
    display_root: Path | None = None,
) -> Records:
    """Read every record file of ``data_dir``; problems are collected, never raised.

    ``schemes`` gives the allowed values of each concept column (from the ontology's SKOS schemes).
    """
    root = display_root or Path.cwd()
    records: list[Record] = []
    problems: list[Problem] = []
    if not data_dir.is_dir():
        return Records([], [Problem(_show(data_dir, root), 0, None, "data folder not found")])
    known = {t.file for t in SCHEMA.values()}
    unreadable: set[str] = set()
    for path in sorted(data_dir.glob("*.csv")):
        if path.name not in known:
            problems.append(
                Problem(
                    _show(path, root),
                    0,
                    None,
                    f"unknown record file; expected one of {', '.join(sorted(known))}",
                )
            )
    for rtype in SCHEMA.values():
        path = data_dir / rtype.file
        shown = _show(path, root)
        if not path.exists():
            if rtype.required_file:
                problems.append(Problem(shown, 0, None, "file is missing"))
            continue
        got, found = _read_file(path.read_bytes(), shown, rtype, schemes)
        records.extend(got)
        problems.extend(found)
        if found and not got:  # unreadable file or header: its ids are unknown
            unreadable.add(rtype.name)
    problems.extend(_check_ids_and_refs(records, unreadable))
    return Records(records, sorted(set(problems)))


def _show(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _decode(raw: bytes, shown: str) -> tuple[str | None, Problem | None]:
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        col = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        byte = raw[err.start : err.start + 1].hex()
        return None, Problem(
            shown,
            line,
            None,
            f"invalid UTF-8 (byte 0x{byte} at character {col}); save the file as UTF-8",
        )


def _read_file(
    raw: bytes, shown: str, rtype: RecordType, schemes: Mapping[str, frozenset[str]]
) -> tuple[list[Record], list[Problem]]:
    text, problem = _decode(raw, shown)
    if problem or text is None:
        return [], [problem] if problem else []
    if not text.strip():
        return [], [
            Problem(
                shown,
                0,
                None,
                "file is empty; expected a header row "
                f"({', '.join(c.name for c in rtype.columns)})",
            )
        ]
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        return [], [Problem(shown, line, None, "binary data (NUL byte): not a CSV text file")]
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as err:
        return [], [Problem(shown, 1, None, f"malformed header row: {err}")]
    allowed = {c.name for c in rtype.columns}
    for i, name in enumerate(header):
        if name not in allowed:
            problems.append(
                Problem(
                    shown,
                    1,
                    name or f"#{i + 1}",
                    "unknown column; expected columns are "
                    + ", ".join(c.name for c in rtype.columns),
                )
            )
        elif header.index(name) != i:
            problems.append(Problem(shown, 1, name, "column appears twice"))
    for col in rtype.columns:
        if col.required and col.name not in header:
            problems.append(Problem(shown, 1, col.name, "required column is missing"))
    if problems:
        return [], problems
    records: list[Record] = []
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            problems.append(
                Problem(shown, start, None, f"malformed CSV: {err} (check for an unclosed quote)")
            )
            break
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(
                Problem(
                    shown, line, None, f"row has {len(row)} cells but the header has {len(header)}"
                )
            )
            continue
        cells = dict(zip(header, row, strict=True))
        values, found = _parse_row(cells, shown, line, rtype, schemes)
        problems.extend(found)
        if "id" in values:
            digest = hashlib.sha256("\x1f".join(row).encode()).hexdigest()[:16]
            records.append(Record(rtype.name, values["id"], shown, line, values, digest))
    return records, problems


def _parse_row(
    cells: Mapping[str, str],
    shown: str,
    line: int,
    rtype: RecordType,
    schemes: Mapping[str, frozenset[str]],
) -> tuple[dict[str, Any], list[Problem]]:
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for col in rtype.columns:
        raw = cells.get(col.name, "").strip()
        if not raw:
            if col.required:
                problems.append(Problem(shown, line, col.name, "is required but empty"))
            continue
        items = [p.strip() for p in raw.split(SEPARATOR)] if col.many else [raw]
        parsed = []
        for item in items:
            if not item:
                problems.append(Problem(shown, line, col.name, f'empty item in list "{raw}"'))
                continue
            try:
                parsed.append(_parse_cell(col, item, schemes))
            except ValueError as err:
                problems.append(Problem(shown, line, col.name, f'"{item}" {err}'))
        if parsed and len(parsed) == len(items):
            values[col.name] = tuple(parsed) if col.many else parsed[0]
    return values, problems


def _parse_cell(col: Column, item: str, schemes: Mapping[str, frozenset[str]]) -> Any:
    kind = col.kind
    if kind == "text":
        if _CONTROL.search(item):
            raise ValueError("contains control characters")
        return item
    if kind == "id":
        if not ID_PATTERN.match(item):
            raise ValueError(
                "is not a valid id (lower-case letters, digits and hyphens, e.g. lab-archipel)"
            )
        return item
    if kind == "ref":
        if not ID_PATTERN.match(item):
            raise ValueError("is not a valid id reference")
        return item
    if kind == "source":
        if ID_PATTERN.match(item):
            return item
        return _url(item)
    if kind == "url":
        return _url(item)
    if kind == "year":
        if not _YEAR.match(item) or not 1800 <= int(item) <= 2100:
            raise ValueError("is not a year (YYYY)")
        return int(item)
    if kind == "date":
        return _date(item)
    if kind == "region":
        if item not in REGIONS:
            raise ValueError(
                "is not an INSEE region code (two digits, e.g. 84 for Auvergne-Rhône-Alpes)"
            )
        return item
    if kind == "concept":
        allowed = schemes.get(col.scheme or "", frozenset())
        if item not in allowed:
            raise ValueError(f"is not one of: {', '.join(sorted(allowed))}")
        return item
    if kind == "number":
        try:
            number = Decimal(item.replace("\u202f", "").replace(" ", ""))
        except InvalidOperation:
            raise ValueError("is not a number") from None
        if not number.is_finite():
            raise ValueError("is not a number")
        return number
    if kind == "integer":
        if not item.isdigit() or int(item) < 1:
            raise ValueError("is not a whole number (1, 2, 3...)")
        return int(item)
    if kind == "siren":
        if not _SIREN.match(item) or not _luhn(item):
            raise ValueError("is not a SIREN number (9 digits with a valid check digit)")
        return item
    if kind == "wikidata":
        if not _QID.match(item):
            raise ValueError("is not a Wikidata item id (Q followed by digits)")
        return item
    raise AssertionError(f"unknown column kind {kind}")


def _url(item: str) -> str:
    if not item.startswith(("http://", "https://")) or _SPACE.search(item):
        raise ValueError("is not an absolute http(s) URL")
    try:
        ox.NamedNode(item)
    except ValueError:
        raise ValueError("is not a valid URL") from None
    return item


def _date(item: str) -> str:
    match = _DATE.match(item)
    if not match:
        raise ValueError("is not a date (YYYY-MM-DD, YYYY-MM or YYYY)")
    year, month, day = match.groups()
    try:
        dt.date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        raise ValueError("is not a real calendar date") from None
    return item


def _luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _check_ids_and_refs(records: list[Record], unreadable: set[str]) -> list[Problem]:
    """Duplicate ids and references to missing or mistyped records.

    References into a file that could not be read are not reported: the file's own problem is
    the one to fix, and a cascade of "does not exist" would bury it.
    """
    problems: list[Problem] = []
    first: dict[str, Record] = {}
    for rec in records:
        if rec.id in first:
            other = first[rec.id]
            problems.append(
                Problem(
                    rec.file,
                    rec.line,
                    "id",
                    f'"{rec.id}" is already used by {other.file}:{other.line}',
                )
            )
        else:
            first[rec.id] = rec
    for rec in records:
        for col in SCHEMA[rec.type].columns:
            if col.kind not in ("ref", "source") or col.name not in rec.values:
                continue
            value = rec.values[col.name]
            for target in value if col.many else (value,):
                if col.kind == "source" and target.startswith(("http://", "https://")):
                    continue
                allowed = ("source",) if col.kind == "source" else col.refs
                found = first.get(target)
                if found is None and unreadable.intersection(allowed):
                    continue
                if found is None:
                    files = " or ".join(SCHEMA[t].file for t in allowed)
                    problems.append(
                        Problem(
                            rec.file, rec.line, col.name, f'"{target}" does not exist in {files}'
                        )
                    )
                elif found.type not in allowed:
                    files = " or ".join(SCHEMA[t].file for t in allowed)
                    problems.append(
                        Problem(
                            rec.file,
                            rec.line,
                            col.name,
                            f'"{target}" is a {found.type} ({found.file}:'
                            f"{found.line}); expected a record of {files}",
                        )
                    )
                elif found is rec:
                    problems.append(
                        Problem(rec.file, rec.line, col.name, "a record cannot refer to itself")
                    )
    return problems
