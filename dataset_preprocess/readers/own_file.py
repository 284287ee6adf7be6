"""A review file of the user's own (CSV, TSV, JSON lines or Parquet) -> the same review frame as
:func:`dataset_preprocess.readers.amazon.read_reviews`, under the same bad-input policy.

Columns are mapped with ``--columns user=...,item=...,rating=...,time=...,text=...``
(:func:`parse_columns`). A key left out is looked for under its usual names
(:data:`DEFAULT_NAMES`: ``user_id``/``reviewerID``/``user``...); a key neither given nor found is
an error, the optional ones too: ``rating=none`` (or ``rating=``) and ``text=none`` say that the
file has none. A header (CSV, TSV, Parquet) naming a column twice is an error; JSON lines take
their columns from the keys of every object, and an object with a key given twice is a bad line.

Every value is read by the one parser of its field in :mod:`dataset_preprocess.readers.fields`, the same
for every format (Amazon's too):

- **user, item**: non-empty strings (or integers) without whitespace or control characters and
  not a string RecBole's loader reads as missing (``NA``, ``null``...) (``bad_id``).
- **rating**: a number in [1, 5] (a numeric string in CSV), else ``bad_rating``. With
  ``rating=none`` every interaction gets rating 1, so the rating-aware parts of SD-MTMP (the
  rating-weighted graph, the rating attention) see one uniform rating.
- **time**: a date string: ISO 8601 (``2021-03-04``, ``2021-03-04 17:05:00``,
  ``2021-03-04T17:05:00+02:00``; no zone = UTC) or the ``strptime`` format given with
  ``--time-format`` (e.g. ``%d/%m/%Y``, ``%Y%m%d``); Parquet timestamps work as they are. A
  number (or numeric string) is Unix seconds, or milliseconds, only where that is plausible for
  a review (1990 to 2100; milliseconds are detected for the column and said); any other number
  (``20150304``, ``42067``, ``16436``, ``2015``...) is ``bad_time`` naming the ``--time-format``
  that reads it (``%Y%m%d``, ``excel``, ``unix_days``, ``%Y``...; see
  :class:`dataset_preprocess.readers.fields.TimeColumn`). Stored, like Amazon times, as days
  since the Unix epoch (see :func:`dataset_preprocess.readers.amazon.write_inter`).
- **text**: a string or empty/null (no sentences; counted as ``empty_text``); any other JSON
  value is ``bad_text``; cleaned like Amazon review texts.
- Quotes: CSV fields may be quoted (``--quotes off`` to read ``"`` as a character); TSV fields
  are not (a quote is a character) unless ``--quotes on``. A quoted text may span lines, but
  one whose inner lines are shaped like rows of the file (a quote left open), or an
  unterminated quote, is ``malformed_row`` naming the lines; skipped, only its first line is
  lost and the lines after it are read as rows. The summary's ``line_accounting`` says where
  every physical line went.
- JSON lines have one text key for the whole file: text under two known keys is refused
  unless ``--columns text=KEY`` says which, and then a line with its text under the other is
  ``bad_text``, never an empty text.
- A CSV/TSV record with a different number of fields than the header, or a JSON line that is
  not an object, is ``malformed_row``/``malformed_json``; blank lines are ignored; a UTF-8 BOM and CRLF line ends
  are accepted; invalid UTF-8 (``bad_encoding``), over-long lines (``line_too_long``), NUL bytes,
  truncated/corrupt gzip and binary files are handled by :mod:`dataset_preprocess.readers.rawio`
  exactly as for Amazon files. A missing mapped column is an error naming the columns found.

Every bad row stops the run (file and line, or Parquet row, in the message) unless
``on_bad_line="skip"``; nothing is written before the whole file has been read.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from dataset_preprocess.readers.amazon import (
    ON_BAD_LINE_CHOICES, SECONDS_PER_DAY, BadRawFile, OnBadLine, ReadReport, _Bad, _line_text,
    clean_text, decode_raw_line, finish_reviews,
)
from dataset_preprocess.readers.fields import (
    TimeColumn, parse_id, parse_json_object, parse_rating, parse_text,
)
from dataset_preprocess.readers.rawio import DEFAULT_MAX_LINE_BYTES, is_gzip, iter_lines

logger = logging.getLogger(__name__)

FORMATS = ("csv", "tsv", "jsonl", "parquet")
COLUMN_KEYS = ("user", "item", "rating", "time", "text")
REQUIRED_KEYS = ("user", "item", "time")
DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "user": ("user_id", "reviewerID", "user", "userId", "customer_id"),
    "item": ("item_id", "asin", "item", "itemId", "product_id", "parent_asin"),
    "rating": ("rating", "overall", "stars", "score"),
    "time": ("timestamp", "unixReviewTime", "time", "date", "review_date"),
    "text": ("review_text", "reviewText", "text", "review", "review_body", "body"),
}
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl",
                  ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
DEFAULT_RATING = 1.0
FIELD_LIMIT_LINES = 16  # a quoted CSV field may span lines, but not more bytes than this many
NONE = "none"  # --columns rating=none / text=none: the file has no such column


class BadColumns(ValueError):
    """The column mapping does not fit the file (or is not a mapping at all)."""


@dataclass
class OwnFileSpec:
    """How to read a file of the user's own."""

    format: str
    columns: dict[str, str | None] = field(default_factory=dict)  # key -> column, None = absent
    time_format: str | None = None
    quotes: bool | None = None  # quoted fields: None = the format's default (CSV on, TSV off)

    def options(self) -> dict[str, Any]:
        options = {"reader": "own_file", "format": self.format, "columns": dict(self.columns),
                   "time_format": self.time_format}
        if self.quotes is not None and self.quotes != (self.format == "csv"):
            options["quotes"] = self.quotes  # only when not the default: older summaries stay
        return options

    def quoted(self) -> bool:
        return self.quotes if self.quotes is not None else self.format == "csv"


def parse_columns(text: str | None) -> dict[str, str | None]:
    """``"user=customer,item=sku,rating=none"`` -> ``{"user": "customer", "item": "sku",
    "rating": None}`` (``rating=`` means the same as ``rating=none``); raises
    :class:`BadColumns` for anything else."""
    if not text:
        return {}
    mapping: dict[str, str | None] = {}
    for part in text.split(","):
        key, sep, column = part.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or key not in COLUMN_KEYS:
            raise BadColumns(f"--columns {text!r}: {part.strip()!r} is not KEY=COLUMN with KEY "
                             f"one of {', '.join(COLUMN_KEYS)}")
        if key in mapping:
            raise BadColumns(f"--columns {text!r}: {key} is given twice")
        absent = not column or column.lower() == NONE
        if absent and key in REQUIRED_KEYS:
            raise BadColumns(f"--columns {text!r}: {key} needs a column name")
        mapping[key] = None if absent else column
    return mapping


def detect_format(path: str | os.PathLike[str], given: str | None = None) -> str:
    """``given`` if set, else from the suffix (``.gz`` ignored): csv, tsv, jsonl or parquet."""
    if given is not None:
        if given not in FORMATS:
            raise BadColumns(f"--format must be one of {', '.join(FORMATS)}, not {given!r}")
        return given
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    if suffixes and suffixes[-1] in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[suffixes[-1]]
    raise BadColumns(f"cannot tell the format of {path} from its name; pass --format "
                     f"({', '.join(FORMATS)})")


_ABSENT_HINT = {
    "rating": "--columns rating=none if the file has no ratings (every rating is then 1)",
    "text": "--columns text=none if it has no review text (then there are no topics: "
            "--no-topics)",
}


def check_header(header: list[str], path: Path, line_no: int | None = None) -> None:
    """Refuse a header naming one column twice: which of the two is meant cannot be told."""
    twice = sorted({c for i, c in enumerate(header) if c in header[:i]})
    if twice:
        raise BadRawFile(path, f"the column name(s) {', '.join(map(repr, twice))} appear twice in "
                               "the header, so which column is meant cannot be told; rename "
                               "one of them", line_no)


def resolve_columns(mapping: Mapping[str, str | None], header: list[str],
                    path: Path) -> dict[str, str | None]:
    """The mapping completed from :data:`DEFAULT_NAMES` and checked against ``header``.

    A key neither given nor found under a usual name is an error, also for the optional rating
    and text: "no rating" must be said (``rating=none``), never assumed.
    """
    resolved: dict[str, str | None] = {}
    found = ", ".join(header) or "none"
    for key in COLUMN_KEYS:
        if key in mapping:
            resolved[key] = mapping[key]
        else:
            resolved[key] = next((n for n in DEFAULT_NAMES[key] if n in header), None)
            if resolved[key] is None:
                hint = f"map one with --columns {key}=NAME"
                if key in _ABSENT_HINT:
                    hint += f", or say {_ABSENT_HINT[key]}"
                raise BadColumns(f"{path}: no {key} column (looked for "
                                 f"{', '.join(DEFAULT_NAMES[key])}); columns found: {found}; "
                                 f"{hint}")
        if resolved[key] is not None and resolved[key] not in header:
            raise BadColumns(f"{path}: --columns {key}={resolved[key]}, but the file has no "
                             f"such column; columns found: {found}")
    used = [c for c in resolved.values() if c is not None]
    if len(set(used)) != len(used):
        raise BadColumns(f"{path}: one column mapped to two keys: {resolved}")
    return resolved


# -- values -----------------------------------------------------------------------------------

def row_values(record: Mapping[str, Any], columns: Mapping[str, str | None],
               time: TimeColumn) -> tuple[str, str, float, float, str]:
    """(user, item, rating, days, raw text) of one record, or raise _Bad; each field is read by
    its parser in :mod:`dataset_preprocess.readers.fields`, as in every other format."""
    user = parse_id("user", record.get(columns["user"]))  # type: ignore[arg-type]
    item = parse_id("item", record.get(columns["item"]))  # type: ignore[arg-type]
    rating = (DEFAULT_RATING if columns["rating"] is None
              else parse_rating("rating", record.get(columns["rating"])))
    seconds = time(record.get(columns["time"]))  # type: ignore[arg-type]
    text = "" if columns["text"] is None else parse_text("text", record.get(columns["text"]))
    return user, item, rating, seconds / SECONDS_PER_DAY, text


# -- readers ----------------------------------------------------------------------------------

def read_own_file(path: str | os.PathLike[str], spec: OwnFileSpec,
                  on_bad_line: OnBadLine = "error", progress: bool = True,
                  max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
                  ) -> tuple[pd.DataFrame, ReadReport, dict[str, str | None]]:
    """Read a file of the user's own; returns the review frame (as ``read_reviews``), the
    report and the resolved column mapping. Raises BadReviewLine, BadRawFile, BadColumns or
    EmptyReviewFile, like the Amazon reader."""
    if on_bad_line not in ON_BAD_LINE_CHOICES:
        raise ValueError(f"on_bad_line must be one of {ON_BAD_LINE_CHOICES}, not {on_bad_line!r}")
    path = Path(path)
    report = ReadReport(path=path, on_bad_line=on_bad_line, source_format=spec.format)
    if spec.format == "parquet":
        records, columns = _parquet_records(path, spec, report)
    elif spec.format == "jsonl":
        records, columns = _jsonl_records(path, spec, report, max_line_bytes)
    else:
        records, columns = _delimited_records(path, spec, report, max_line_bytes)
    rows: list[tuple[str, str, float, float, str, int]] = []
    time = TimeColumn("time", spec.time_format, columns.get("time"))
    for line_no, record in tqdm(records, desc=f"reading {path.name}", unit=" rows",
                                disable=None if progress else True):
        try:
            user, item, rating, days, text = row_values(record, columns, time)
        except _Bad as bad:
            report.bad_line(line_no, bad)
            continue
        cleaned = clean_text(text)
        report.texts_normalised += cleaned != text.strip()
        rows.append((user, item, rating, days, cleaned, line_no))
    if time.unit == "milliseconds":
        report.time_unit = "Unix milliseconds (detected: as seconds they lie after 2100)"
        logger.warning("%s: the time column %r holds Unix milliseconds (as seconds they would lie "
                       "after 2100); read as such (--time-format unix_ms says so)", path,
                       columns.get("time"))
    elif time.unit == "seconds":
        report.time_unit = "Unix seconds"
    return finish_reviews(rows, report), report, columns


class _Lines:
    """The decoded physical lines of a delimited file (``\\n`` re-added) for the csv module, one
    record at a time: ``taken`` holds the (number, text) of the lines the current record read,
    and lines can be pushed back to be read again as rows of their own. Lines that cannot be
    decoded go through the bad-line policy and are left out."""

    def __init__(self, path: Path, report: ReadReport, max_line_bytes: int) -> None:
        self._raw = iter_lines(path, max_line_bytes)
        self._back: deque[tuple[int, str]] = deque()
        self.report, self.max_line_bytes = report, max_line_bytes
        self.taken: list[tuple[int, str]] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._back:
            item = self._back.popleft()
        else:
            while True:
                raw = next(self._raw)
                self.report.lines += 1
                try:
                    item = (raw.line_no, decode_raw_line(raw, self.max_line_bytes))
                    break
                except _Bad as bad:
                    self.report.bad_line(raw.line_no, bad)
        self.taken.append(item)
        return item[1] + "\n"

    def push_back(self, items: list[tuple[int, str]]) -> None:
        self._back.extendleft(reversed(items))

    def record(self, dialect: dict[str, Any]) -> list[str]:
        """The next record (raises StopIteration at the end, csv.Error for a broken one); the
        csv module reads no line past the record's end, so a fresh reader per record is exact."""
        self.taken = []
        return next(csv.reader(self, **dialect))


def _delimited_records(path: Path, spec: OwnFileSpec, report: ReadReport, max_line_bytes: int
                       ) -> tuple[Iterator[tuple[int, dict[str, Any]]], dict[str, str | None]]:
    """The rows of a CSV or TSV file. A quoted text may span lines, but one whose inner lines
    are shaped like rows of the file (a quote left open) swallows rows: that record is a bad
    line naming them (under skip, its first line is skipped and the lines after it are read
    again as rows); an unterminated quote is the same. Every physical line is accounted for in
    the report (header, blank, rows, skipped, inside multi-line texts)."""
    lines = _Lines(path, report, max_line_bytes)
    csv.field_size_limit(max(max_line_bytes * FIELD_LIMIT_LINES, 1 << 17))
    dialect: dict[str, Any] = {"delimiter": "," if spec.format == "csv" else "\t", "strict": True}
    if not spec.quoted():
        dialect["quoting"] = csv.QUOTE_NONE
    name = spec.format.upper()
    header: list[str] | None = None
    while header is None:
        try:
            first = lines.record(dialect)
        except StopIteration:
            header = []
            break
        except csv.Error as exc:
            raise BadRawFile(path, f"the header is not valid {name} ({exc})",
                             lines.taken[0][0] if lines.taken else 1) from None
        if first and any(cell.strip() for cell in first):
            header = [cell.strip() for cell in first]
            check_header(header, path, lines.taken[0][0] if lines.taken else None)
            report.header_lines += len(lines.taken)
        else:
            report.blank_lines += len(lines.taken)
    if not header:
        return iter(()), dict(spec.columns)
    columns = resolve_columns(spec.columns, header, path)
    shaped = _RowShape(header, columns, dialect, spec.time_format)

    def records() -> Iterator[tuple[int, dict[str, Any]]]:
        while True:
            try:
                cells = lines.record(dialect)
                problem = None
            except StopIteration:
                if not lines.taken:
                    return
                cells, problem = [], "an unterminated quote: the file ends inside the field"
            except csv.Error as exc:
                cells, problem = [], (
                    "an unterminated quote: the file ends inside the field"
                    if "unexpected end of data" in str(exc) else f"not valid {name} ({exc})")
            taken = list(lines.taken)
            line_no = taken[0][0] if taken else report.lines
            inner = [n for n, text in taken[1:] if shaped(text)]
            if problem is not None or inner:
                if inner:
                    breaks = f" ({problem})" if problem else ""
                    what = (f"a quoted text opened on this line runs to line {taken[-1][0]}"
                            f"{breaks}, and line(s) {_ranges(inner)} inside it are shaped like "
                            f"rows of this file ({len(header)} fields, ids and a time where the "
                            "columns put them): a quote left open? Close it, or double a quote "
                            "inside a quoted text")
                elif len(taken) == 1:
                    what = problem if "unterminated" in problem else (
                        f"{problem}; an unterminated quote?")
                else:
                    what = (f"{problem}: an unterminated quote on this line took in lines "
                            f"{taken[1][0]}-{taken[-1][0]}")
                report.bad_line(line_no, _Bad("malformed_row", what))
                lines.push_back(taken[1:])  # skipped: the lines after it are rows of their own
                continue
            report.continuation_lines += len(taken) - 1
            if not cells or not any(cell.strip() for cell in cells):
                report.blank_lines += 1
                continue
            if len(cells) != len(header):
                report.bad_line(line_no, _Bad("malformed_row", f"{len(cells)} fields, but the "
                                              f"header has {len(header)}"))
                continue
            yield line_no, dict(zip(header, cells))

    return records(), columns


class _RowShape:
    """Whether one physical line, read alone, is a row of the file: as many fields as the
    header, and a user id, an item id and a time where the columns put them."""

    def __init__(self, header: list[str], columns: Mapping[str, str | None],
                 dialect: dict[str, Any], time_format: str | None) -> None:
        self.header, self.columns = header, columns
        self.dialect = {**dialect, "strict": False}
        self.time_format = time_format

    def __call__(self, text: str) -> bool:
        try:
            cells = next(csv.reader([text], **self.dialect))
        except (csv.Error, StopIteration):
            return False
        if len(cells) != len(self.header):
            return False
        record = dict(zip(self.header, cells))
        try:
            parse_id("user", record.get(self.columns["user"]))  # type: ignore[arg-type]
            parse_id("item", record.get(self.columns["item"]))  # type: ignore[arg-type]
            TimeColumn("time", self.time_format)(record.get(self.columns["time"]))  # type: ignore[arg-type]
        except _Bad:
            return False
        return True


def _ranges(numbers: list[int]) -> str:
    """[6, 7, 8, 11] -> '6-8, 11'."""
    parts: list[str] = []
    for n in numbers:
        if parts and int(parts[-1].split("-")[-1]) == n - 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{n}"
        else:
            parts.append(str(n))
    return ", ".join(parts)


def _jsonl_records(path: Path, spec: OwnFileSpec, report: ReadReport, max_line_bytes: int
                   ) -> tuple[Iterator[tuple[int, dict[str, Any]]], dict[str, str | None]]:
    """The objects of a JSON lines file and the mapping resolved against the keys of *every*
    object (a key missing from the first lines is still found), so the file is parsed whole
    before the first record is used."""
    objects: list[tuple[int, dict[str, Any]]] = []
    keys: dict[str, None] = {}
    for raw in iter_lines(path, max_line_bytes):
        report.lines += 1
        try:
            line = _line_text(raw, max_line_bytes)
            if not line:
                report.blank_lines += 1
                continue
            obj = parse_json_object(line)
        except _Bad as bad:
            report.bad_line(raw.line_no, bad)
            continue
        keys.update(dict.fromkeys(obj))
        objects.append((raw.line_no, obj))
    if not objects:
        return iter(()), dict(spec.columns)
    known = [k for k in DEFAULT_NAMES["text"] if k in keys]
    if "text" not in spec.columns and len(known) > 1:
        where = "; ".join(f"{k!r} on {sum(k in obj for _, obj in objects)} line(s) (first: line "
                          f"{next(n for n, obj in objects if k in obj)})" for k in known)
        raise BadColumns(f"{path}: the review text is under more than one key: {where}; a file "
                         "has one text key: say which with --columns text=KEY (lines with the "
                         "text under another key are then refused)")
    columns = resolve_columns(spec.columns, list(keys), path)
    text = columns["text"]
    others = [k for k in DEFAULT_NAMES["text"] if k in keys and k != text
              and k not in columns.values()]
    if text is None or not others:
        return iter(objects), columns

    def records() -> Iterator[tuple[int, dict[str, Any]]]:
        for line_no, obj in objects:
            elsewhere = [k for k in others if isinstance(obj.get(k), str) and obj[k].strip()]
            if obj.get(text) in (None, "") and elsewhere:
                report.bad_line(line_no, _Bad(
                    "bad_text", f"the text is under {elsewhere[0]!r} on this line, but the "
                                f"file's text key is {text!r} (one key for the whole file); "
                                "rename the key in these lines, or map the one meant with "
                                f"--columns text={elsewhere[0]}"))
                continue
            yield line_no, obj

    return records(), columns


def _parquet_records(path: Path, spec: OwnFileSpec, report: ReadReport
                     ) -> tuple[Iterator[tuple[int, dict[str, Any]]], dict[str, str | None]]:
    """Rows of a Parquet file, numbered from 1 (reported as 'line N' = row N)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
        raise BadColumns(f"reading {path} needs pyarrow: pip install pyarrow") from exc
    if is_gzip(path):
        raise BadRawFile(path, "a gzip-compressed Parquet file; Parquet compresses itself: "
                               "decompress it first")
    try:
        parquet = pq.ParquetFile(path)
        header = list(parquet.schema_arrow.names)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError... for a bad file
        raise BadRawFile(path, f"not a readable Parquet file ({exc})") from None
    check_header(header, path)
    columns = resolve_columns(spec.columns, header, path)
    wanted = sorted({c for c in columns.values() if c is not None}, key=header.index)

    def records() -> Iterator[tuple[int, dict[str, Any]]]:
        row = 0
        try:
            for batch in parquet.iter_batches(columns=wanted, batch_size=65_536):
                for record in batch.to_pylist():
                    row += 1
                    report.lines += 1
                    yield row, record
        except Exception as exc:
            raise BadRawFile(path, f"the Parquet data is corrupt ({exc})", row + 1) from None

    return records(), columns
