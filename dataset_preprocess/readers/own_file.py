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
- **time**: Unix seconds (a number, or a numeric string), or a date string: ISO 8601
  (``2021-03-04``, ``2021-03-04 17:05:00``, ``2021-03-04T17:05:00+02:00``; no zone = UTC) or the
  ``strptime`` format given with ``--time-format`` (e.g. ``%d/%m/%Y``, ``%Y%m%d``); Parquet
  timestamps work as they are. A number that is also a date written as digits (``20150304``) is
  refused unless ``--time-format`` says which (``%Y%m%d``, or ``unix`` for seconds). A time
  outside [1970-01-01, 2100-01-01) is ``bad_time`` (milliseconds, most likely). Stored, like
  Amazon times, as days since the Unix epoch (see :func:`dataset_preprocess.readers.amazon.write_inter`).
- **text**: a string or empty/null (no sentences; counted as ``empty_text``); any other JSON
  value is ``bad_text``; cleaned like Amazon review texts.
- A CSV/TSV record with a different number of fields than the header, an unterminated quote
  (a field over 16 lines' worth of bytes) or a JSON line that is not an object is
  ``malformed_row``/``malformed_json``; blank lines are ignored; a UTF-8 BOM and CRLF line ends
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
    parse_id, parse_json_object, parse_rating, parse_text, parse_time,
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

    def options(self) -> dict[str, Any]:
        return {"reader": "own_file", "format": self.format, "columns": dict(self.columns),
                "time_format": self.time_format}


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
               time_format: str | None) -> tuple[str, str, float, float, str]:
    """(user, item, rating, days, raw text) of one record, or raise _Bad; each field is read by
    its parser in :mod:`dataset_preprocess.readers.fields`, as in every other format."""
    user = parse_id("user", record.get(columns["user"]))  # type: ignore[arg-type]
    item = parse_id("item", record.get(columns["item"]))  # type: ignore[arg-type]
    rating = (DEFAULT_RATING if columns["rating"] is None
              else parse_rating("rating", record.get(columns["rating"])))
    seconds = parse_time("time", record.get(columns["time"]), time_format)  # type: ignore[arg-type]
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
    for line_no, record in tqdm(records, desc=f"reading {path.name}", unit=" rows",
                                disable=None if progress else True):
        try:
            user, item, rating, days, text = row_values(record, columns, spec.time_format)
        except _Bad as bad:
            report.bad_line(line_no, bad)
            continue
        cleaned = clean_text(text)
        report.texts_normalised += cleaned != text.strip()
        rows.append((user, item, rating, days, cleaned, line_no))
    return finish_reviews(rows, report), report, columns


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
            check_header(header, path, numbers[0] if numbers else None)
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
    return iter(objects), resolve_columns(spec.columns, list(keys), path)


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
