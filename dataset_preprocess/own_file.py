"""A review file of the user's own (CSV, TSV, JSON lines or Parquet) -> the same review frame as
:func:`dataset_preprocess.amazon.read_reviews`, under the same bad-input policy.

Columns are mapped with ``--columns user=...,item=...,rating=...,time=...,text=...``
(:func:`parse_columns`). ``user``, ``item`` and ``time`` are required; a key left out is looked
for under its usual names (:data:`DEFAULT_NAMES`: ``user_id``/``reviewerID``/``user``...);
``rating=`` (empty) says there is no rating column.

- **user, item**: non-empty strings (or integers) without whitespace or control characters
  (``bad_id``).
- **rating**: a number in [1, 5] (a numeric string in CSV), else ``bad_rating``. Without a
  rating column every interaction gets rating 1, so the rating-aware parts of SD-MTMP (the
  rating-weighted graph, the rating attention) see one uniform rating.
- **time**: Unix seconds (a number, or a numeric string), or a date string: ISO 8601
  (``2021-03-04``, ``2021-03-04 17:05:00``, ``2021-03-04T17:05:00+02:00``; no zone = UTC) or the
  ``strptime`` format given with ``--time-format`` (e.g. ``%d/%m/%Y``); Parquet timestamps work
  as they are. Stored, like Amazon times, as days since the Unix epoch. A time before 1970 or
  at/after 1e11 seconds (milliseconds, most likely) is ``bad_time``.
- **text**: a string or empty/null (no sentences; counted as ``empty_text``); any other JSON
  value is ``bad_text``; cleaned like Amazon review texts.
- A CSV/TSV record with a different number of fields than the header, an unterminated quote
  (a field over 16 lines' worth of bytes) or a JSON line that is not an object is
  ``malformed_row``/``malformed_json``; blank lines are ignored; a UTF-8 BOM and CRLF line ends
  are accepted; invalid UTF-8 (``bad_encoding``), over-long lines (``line_too_long``),
  truncated/corrupt gzip and binary files are handled by :mod:`dataset_preprocess.rawio`
  exactly as for Amazon files. A missing mapped column is an error naming the columns found.

Every bad row stops the run (file and line, or Parquet row, in the message) unless
``on_bad_line="skip"``; nothing is written before the whole file has been read.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from dataset_preprocess.amazon import (
    MAX_UNIX_TIME, ON_BAD_LINE_CHOICES, SECONDS_PER_DAY, BadRawFile, OnBadLine, ReadReport,
    _Bad, _is_number, _line_text, clean_text, decode_raw_line, finish_reviews,
)
from dataset_preprocess.rawio import DEFAULT_MAX_LINE_BYTES, is_gzip, iter_lines

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
_BAD_ID = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class BadColumns(ValueError):
    """The column mapping does not fit the file (or is not a mapping at all)."""


@dataclass
class OwnFileSpec:
    """How to read a file of the user's own."""

    format: str
    columns: dict[str, str | None] = field(default_factory=dict)  # key -> column, None = absent
    time_format: str | None = None

    def options(self) -> dict[str, Any]:
        return {"reader": "own_file", "format": self.format, "columns": dict(self.columns),
                "time_format": self.time_format}


def parse_columns(text: str | None) -> dict[str, str | None]:
    """``"user=customer,item=sku,rating="`` -> ``{"user": "customer", "item": "sku",
    "rating": None}``; raises :class:`BadColumns` for anything else."""
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
        if not column and key in REQUIRED_KEYS:
            raise BadColumns(f"--columns {text!r}: {key} needs a column name")
        mapping[key] = column or None
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


def resolve_columns(mapping: Mapping[str, str | None], header: list[str],
                    path: Path) -> dict[str, str | None]:
    """The mapping completed from :data:`DEFAULT_NAMES` and checked against ``header``."""
    resolved: dict[str, str | None] = {}
    for key in COLUMN_KEYS:
        if key in mapping:
            resolved[key] = mapping[key]
        else:
            resolved[key] = next((n for n in DEFAULT_NAMES[key] if n in header), None)
        if resolved[key] is None and key in REQUIRED_KEYS:
            raise BadColumns(f"{path}: no {key} column (looked for {', '.join(DEFAULT_NAMES[key])}"
                             f"); columns found: {', '.join(header) or 'none'}; map one with "
                             f"--columns {key}=NAME")
        if resolved[key] is not None and resolved[key] not in header:
            raise BadColumns(f"{path}: --columns {key}={resolved[key]}, but the file has no "
                             f"such column; columns found: {', '.join(header) or 'none'}")
    used = [c for c in resolved.values() if c is not None]
    if len(set(used)) != len(used):
        raise BadColumns(f"{path}: one column mapped to two keys: {resolved}")
    return resolved


# -- values -----------------------------------------------------------------------------------

def _id(key: str, value: Any) -> str:
    if isinstance(value, bool) or value is None or value == "":
        raise _Bad("missing_field" if value in (None, "") else "bad_id",
                   f"{key} is missing or empty" if value in (None, "")
                   else f"{key} {value!r} is not an id")
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str) or _BAD_ID.search(value):
        raise _Bad("bad_id", f"{key} {value!r} is not a string without whitespace")
    return value


def _number(value: Any) -> float | None:
    """A finite number from a JSON number or a numeric string, else None."""
    if _is_number(value):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = float(value)
        return number if _is_number(number) else None
    return None


def _rating(value: Any) -> float:
    if value is None or value == "":
        raise _Bad("missing_field", "rating is missing or empty")
    rating = _number(value)
    if rating is None or not 1 <= rating <= 5:
        raise _Bad("bad_rating", f"rating {value!r} is not a number in [1, 5]")
    return rating


def _seconds(value: Any, time_format: str | None) -> float:
    """Unix seconds of a time value (number, numeric string, date string, datetime)."""
    if value is None or value == "":
        raise _Bad("missing_field", "time is missing or empty")
    seconds = None if isinstance(value, bool) else _number(value)
    if seconds is None:
        moment = _moment(value, time_format)
        if moment is None:
            hint = f"the format {time_format!r}" if time_format else (
                "Unix seconds or an ISO 8601 date (or give --time-format)")
            raise _Bad("bad_time", f"time {value!r} is not {hint}")
        seconds = moment.timestamp()
    if not 0 <= seconds < MAX_UNIX_TIME:
        raise _Bad("bad_time", f"time {value!r} is not in [1970-01-01, 1e11 s): Unix seconds "
                               "are expected (milliseconds are 1000 times too large)")
    return seconds


def _moment(value: Any, time_format: str | None) -> datetime | None:
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            text = value.strip()
            if time_format:
                moment = datetime.strptime(text, time_format)
            else:
                moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN from Parquet/pandas
        return ""
    if not isinstance(value, str):
        raise _Bad("bad_text", f"text is a {type(value).__name__}, not a string")
    return value


def row_values(record: Mapping[str, Any], columns: Mapping[str, str | None],
               time_format: str | None) -> tuple[str, str, float, float, str]:
    """(user, item, rating, days, raw text) of one record, or raise _Bad."""
    user = _id("user", record.get(columns["user"]))  # type: ignore[arg-type]
    item = _id("item", record.get(columns["item"]))  # type: ignore[arg-type]
    rating = DEFAULT_RATING if columns["rating"] is None else _rating(record.get(columns["rating"]))
    seconds = _seconds(record.get(columns["time"]), time_format)  # type: ignore[arg-type]
    text = "" if columns["text"] is None else _text(record.get(columns["text"]))
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
        records, columns = _jsonl_records(path, spec, report, max_line_bytes), None
    else:
        records, columns = _delimited_records(path, spec, report, max_line_bytes)
    rows: list[tuple[str, str, float, float, str, int]] = []
    resolved = columns
    for line_no, record in tqdm(records, desc=f"reading {path.name}", unit=" rows",
                                disable=None if progress else True):
        if resolved is None:  # JSON lines: the first object's keys stand for the header
            resolved = resolve_columns(spec.columns, list(record), path)
        try:
            user, item, rating, days, text = row_values(record, resolved, spec.time_format)
        except _Bad as bad:
            report.bad_line(line_no, bad)
            continue
        cleaned = clean_text(text)
        report.texts_normalised += cleaned != text.strip()
        rows.append((user, item, rating, days, cleaned, line_no))
    if resolved is None:
        resolved = dict(spec.columns)
    return finish_reviews(rows, report), report, resolved


def _decoded_lines(path: Path, report: ReadReport, max_line_bytes: int,
                   numbers: list[int]) -> Iterator[str]:
    """Decoded physical lines (``\\n`` re-added) for the csv module; bad lines go through the
    policy and are left out; the line numbers of what is yielded are appended to ``numbers``."""
    for raw in iter_lines(path, max_line_bytes):
        report.lines += 1
        try:
            text = decode_raw_line(raw, max_line_bytes)
        except _Bad as bad:
            report.bad_line(raw.line_no, bad)
            continue
        numbers.append(raw.line_no)
        yield text + "\n"


def _delimited_records(path: Path, spec: OwnFileSpec, report: ReadReport, max_line_bytes: int
                       ) -> tuple[Iterator[tuple[int, dict[str, Any]]], dict[str, str | None]]:
    numbers: list[int] = []
    lines = _decoded_lines(path, report, max_line_bytes, numbers)
    csv.field_size_limit(max(max_line_bytes * FIELD_LIMIT_LINES, 1 << 17))
    reader = csv.reader(lines, delimiter="," if spec.format == "csv" else "\t", strict=True)
    header: list[str] | None = None
    while header is None:
        try:
            first = next(reader)
        except StopIteration:
            header = []
            break
        except csv.Error as exc:
            raise BadRawFile(path, f"the header is not valid {spec.format.upper()} ({exc})",
                             numbers[0] if numbers else 1) from None
        if first and any(cell.strip() for cell in first):
            header = [cell.strip() for cell in first]
        else:
            report.blank_lines += 1
        numbers.clear()
    if not header:
        return iter(()), dict(spec.columns)
    columns = resolve_columns(spec.columns, header, path)

    def records() -> Iterator[tuple[int, dict[str, Any]]]:
        while True:
            numbers.clear()
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line_no = numbers[0] if numbers else report.lines
                report.bad_line(line_no, _Bad("malformed_row", f"not valid "
                                f"{spec.format.upper()} ({exc}; an unterminated quote?)"))
                continue
            line_no = numbers[0] if numbers else report.lines
            if not cells or not any(cell.strip() for cell in cells):
                report.blank_lines += 1
                continue
            if len(cells) != len(header):
                report.bad_line(line_no, _Bad("malformed_row", f"{len(cells)} fields, but the "
                                              f"header has {len(header)}"))
                continue
            yield line_no, dict(zip(header, cells))

    return records(), columns


def _jsonl_records(path: Path, spec: OwnFileSpec, report: ReadReport, max_line_bytes: int
                   ) -> Iterator[tuple[int, dict[str, Any]]]:
    for raw in iter_lines(path, max_line_bytes):
        report.lines += 1
        try:
            line = _line_text(raw, max_line_bytes)
            if not line:
                report.blank_lines += 1
                continue
            try:
                obj = json.loads(line)
            except ValueError as exc:
                raise _Bad("malformed_json", f"not valid JSON ({exc})") from None
            if not isinstance(obj, dict):
                raise _Bad("malformed_json", f"a JSON {type(obj).__name__}, not an object")
        except _Bad as bad:
            report.bad_line(raw.line_no, bad)
            continue
        yield raw.line_no, obj


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
