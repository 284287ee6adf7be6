"""Amazon 5-core review files (2014 or 2018 release) -> RecBole atomic files.

Raw files are JSON lines, plain or gzip (detected by the magic bytes, not the suffix), read one
line at a time. Fields used: reviewerID, asin, overall, reviewText, unixReviewTime; all others
are ignored. Every field is read by its parser in :mod:`dataset_preprocess.readers.fields`, the same as
for the other formats. Timestamps are stored in days since the Unix epoch (unixReviewTime /
86400) rounded to float32, the precision RecBole keeps: whole days (every Amazon time) are
exact, raw Unix seconds would not be (see docs/DATA.md). Before it is written, the ``.inter``
is read back as RecBole reads it and must give the same users, items and interactions
(:mod:`dataset_preprocess.loadcheck`).

Bad-input policy:

- A bad line stops the run with :class:`BadReviewLine` (a ``ValueError``) naming the file, the
  1-based line number and the problem; with ``on_bad_line="skip"`` (CLI ``--on-bad-line skip``)
  it is skipped instead, and skips are counted by reason in the log and the summary. A line is
  bad when it is not a JSON object (``malformed_json``); lacks reviewerID, asin, overall or
  unixReviewTime, or has it null or empty (``missing_field``); has an ID that is not a string
  or contains whitespace or control characters, which would break the tab-separated file
  (``bad_id``), or that RecBole's loader would read as missing (``NA``, ``null``...); has a
  rating that is not a number in [1, 5] (``bad_rating``); has a time that is not a number of
  seconds in [1970-01-01, 2100-01-01) (``bad_time``, the bound catches milliseconds and
  typos); has a reviewText that is neither a string nor null (``bad_text``); has a key twice
  (``malformed_json``); is not valid UTF-8
  (``bad_encoding``); or is longer than ``max_line_bytes`` (``line_too_long``, 1 MiB by
  default, CLI ``--max-line-bytes``; the line is never held in memory whole).
- The file as a whole: a truncated or corrupt gzip stream, or a binary (or UTF-16) file,
  raises :class:`BadRawFile` naming the file (and the last line read), whatever the policy;
  see :mod:`dataset_preprocess.readers.rawio`.
- Empty, whitespace-only, null or missing reviewText is allowed: the review is kept with text
  "" (no sentences) and counted as ``empty_text``.
- Duplicate (user, item) pairs: the most recent review is kept (latest unixReviewTime, ties go
  to the later line); the others are dropped and counted as ``duplicates_dropped``.
- Any Unicode is kept (other languages, emoji, right-to-left text): it is NFC-normalised, lone
  surrogates become U+FFFD, control characters other than whitespace are removed, and
  surrounding whitespace is stripped; changed texts are counted.
- Blank lines are ignored silently; a leading UTF-8 byte-order mark is ignored.
- A file with no valid review (empty, or everything skipped) raises :class:`EmptyReviewFile`.
- Optional k-core filtering (:func:`kcore_filter`) drops users and items with fewer than k
  reviews until none is left; what it removed is in the summary.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from tqdm import tqdm

from dataset_preprocess.atomic_io import atomic_write, atomic_write_json, atomic_write_text
from dataset_preprocess.checks import kcore_check, stored_days, time_checks, warnings_for
from dataset_preprocess.readers.fields import (
    UNIX_FORMAT, BadValue as _Bad, parse_id, parse_json_object, parse_rating, parse_text,
    parse_time,
)
from dataset_preprocess.loadcheck import check_loadable
from dataset_preprocess.outputs import check_output, conversion_lock, writing
from dataset_preprocess.readers.rawio import (
    DEFAULT_MAX_LINE_BYTES, BadRawFile, decode_line, iter_lines, open_raw,
)
from dataset_preprocess.registry import AmazonDataset

__all__ = ["BadRawFile", "BadReviewLine", "EmptyReviewFile", "open_raw", "read_reviews"]

logger = logging.getLogger(__name__)

OnBadLine = Literal["error", "skip"]
ON_BAD_LINE_CHOICES: tuple[str, ...] = ("error", "skip")
REQUIRED_FIELDS = ("reviewerID", "asin", "overall", "unixReviewTime")
COLUMNS = ["user_id", "item_id", "rating", "timestamp", "review_text"]
INTER_HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
SECONDS_PER_DAY = 86_400
SUMMARY_VERSION = 3  # 3: one parser per field, float32 times, read-back check, warnings
AMAZON_KCORE = 5
TIMESTAMP_UNIT = ("days since 1970-01-01 UTC (unix seconds / 86400), rounded to float32 as "
                  "RecBole holds it: exact for whole days")
MAX_SKIPS_LOGGED = 5

_CONTROL = re.compile("[" + "".join(
    re.escape(chr(c)) for c in range(0xA0)
    if unicodedata.category(chr(c)) == "Cc" and not chr(c).isspace()) + "]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadReviewLine(ValueError):
    """A raw line that cannot become a review (see the module's bad-input policy)."""

    def __init__(self, path: Path, line_no: int, reason: str, detail: str) -> None:
        super().__init__(f"{path}, line {line_no}: {detail} [{reason}]; pass "
                         "on_bad_line='skip' (CLI: --on-bad-line skip) to skip such lines")
        self.path, self.line_no, self.reason, self.detail = path, line_no, reason, detail


class EmptyReviewFile(ValueError):
    """A raw file without a single valid review."""


@dataclass
class ReadReport:
    """What reading a raw file found; the summary file is built from it."""

    path: Path
    on_bad_line: str
    source_format: str = "unknown"
    lines: int = 0
    blank_lines: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    duplicates_dropped: int = 0
    empty_text: int = 0
    texts_normalised: int = 0
    kcore: int | None = None
    kcore_removed: dict[str, int] = field(default_factory=dict)
    columns: dict[str, str | None] | None = None  # own files: the column mapping used
    header_lines: int = 0  # CSV/TSV: the header's physical lines
    continuation_lines: int = 0  # CSV/TSV: the 2nd, 3rd... lines of rows with multi-line texts
    time_unit: str | None = None  # own files: what a number in the time column was read as
    first_skip: str | None = None  # the first skipped line's problem, for the empty-file error

    def bad_line(self, line_no: int, bad: _Bad) -> None:
        """Apply the policy to one bad line: raise, or count it (and log the first few)."""
        if self.on_bad_line == "error":
            raise BadReviewLine(self.path, line_no, bad.reason, bad.detail)
        self.skipped[bad.reason] += 1
        self.first_skip = self.first_skip or f"line {line_no}: {bad.detail}"
        if self.skipped.total() <= MAX_SKIPS_LOGGED:
            logger.warning("skipping %s, line %d: %s", self.path, line_no, bad.detail)


def clean_text(text: str) -> str:
    """NFC, lone surrogates -> U+FFFD, non-whitespace control characters removed, stripped."""
    text = _SURROGATE.sub("\ufffd", text)
    return _CONTROL.sub("", unicodedata.normalize("NFC", text)).strip()


def _parse(line: str) -> tuple[str, str, float, float, Any, dict[str, Any]]:
    """(user, item, rating, unix time, raw reviewText, object) of one line, or raise _Bad;
    every field goes through :mod:`dataset_preprocess.readers.fields`, as in the other formats."""
    obj = parse_json_object(line)
    missing = [f for f in REQUIRED_FIELDS if obj.get(f) is None or obj.get(f) == ""]
    if missing:
        raise _Bad("missing_field", f"missing or empty field(s) {', '.join(missing)}")
    user = parse_id("reviewerID", obj["reviewerID"], allow_int=False)
    item = parse_id("asin", obj["asin"], allow_int=False)
    rating = parse_rating("overall", obj["overall"])
    time = parse_time("unixReviewTime", obj["unixReviewTime"], UNIX_FORMAT)
    text = parse_text("reviewText", obj.get("reviewText"))
    return user, item, rating, time, text, obj


def read_reviews(path: str | os.PathLike[str], on_bad_line: OnBadLine = "error",
                 progress: bool = True, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
                 ) -> tuple[pd.DataFrame, ReadReport]:
    """Read a raw review file under the module's bad-input policy.

    Returns the reviews, one row per (user, item), with columns ``user_id`` (str), ``item_id``
    (str), ``rating`` (float), ``timestamp`` (float, days since the Unix epoch) and
    ``review_text`` (str, "" if none), sorted by (user_id, timestamp, item_id); and the report.
    Raises :class:`BadReviewLine` (a bad line, under "error"), :class:`BadRawFile` (truncated
    or corrupt gzip, binary file) or :class:`EmptyReviewFile`.
    """
    if on_bad_line not in ON_BAD_LINE_CHOICES:
        raise ValueError(f"on_bad_line must be one of {ON_BAD_LINE_CHOICES}, not {on_bad_line!r}")
    path = Path(path)
    report = ReadReport(path=path, on_bad_line=on_bad_line)
    rows: list[tuple[str, str, float, float, str, int]] = []
    versions: Counter[str] = Counter()
    lines = iter_lines(path, max_line_bytes)
    for raw in tqdm(lines, desc=f"reading {path.name}", unit=" lines",
                    disable=None if progress else True):
        line_no = raw.line_no
        report.lines += 1
        try:
            line = _line_text(raw, max_line_bytes)
            if not line:
                report.blank_lines += 1
                continue
            user, item, rating, time, text, obj = _parse(line)
        except _Bad as bad:
            report.bad_line(line_no, bad)
            continue
        versions["2018"] += "verified" in obj
        versions["2014"] += "helpful" in obj
        cleaned = clean_text(text or "")
        report.texts_normalised += cleaned != (text or "").strip()
        rows.append((user, item, rating, time / SECONDS_PER_DAY, cleaned, line_no))
    if versions["2018"] or versions["2014"]:
        report.source_format = "2018" if versions["2018"] > versions["2014"] else "2014"
    return finish_reviews(rows, report), report


def decode_raw_line(raw: Any, max_line_bytes: int) -> str:
    """The text of a raw line (BOM removed on line 1, whitespace kept), or raise _Bad."""
    if raw.too_long:
        raise _Bad("line_too_long", f"the line is {raw.length:,} bytes, over the limit of "
                                    f"{max_line_bytes:,} (raise it with --max-line-bytes)")
    try:
        line = decode_line(raw.data)
    except ValueError as exc:
        raise _Bad("bad_encoding", str(exc)) from None
    return line.lstrip("\ufeff") if raw.line_no == 1 else line


def _line_text(raw: Any, max_line_bytes: int) -> str:
    """The stripped text of a raw line, or raise _Bad."""
    return decode_raw_line(raw, max_line_bytes).strip()


def finish_reviews(rows: list[tuple[str, str, float, float, str, int]],
                   report: ReadReport) -> pd.DataFrame:
    """Rows (user, item, rating, days, text, line) -> the deduplicated, sorted review frame."""
    path = report.path
    if report.skipped:
        logger.warning("skipped %d bad line(s) of %s: %s", report.skipped.total(), path,
                       ", ".join(f"{k}={v}" for k, v in sorted(report.skipped.items())))
    if not rows:
        first = f"; the first skipped, {report.first_skip}" if report.first_skip else ""
        raise EmptyReviewFile(f"no valid review in {path} ({report.lines} line(s), "
                              f"{report.blank_lines} blank, {report.skipped.total()} skipped"
                              f"{first})")
    df = pd.DataFrame(rows, columns=[*COLUMNS, "line"])
    df = df.sort_values(["user_id", "item_id", "timestamp", "line"], kind="stable")
    deduped = df.drop_duplicates(["user_id", "item_id"], keep="last")
    report.duplicates_dropped = len(df) - len(deduped)
    if report.duplicates_dropped:
        logger.warning("dropped %d older duplicate (user, item) review(s) of %s",
                       report.duplicates_dropped, path)
    df = (deduped.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
          .drop(columns="line").reset_index(drop=True))
    report.empty_text = int((df["review_text"] == "").sum())
    return df


def kcore_filter(df: pd.DataFrame, k: int, report: ReadReport | None = None) -> pd.DataFrame:
    """Keep the k-core: drop users and items with fewer than ``k`` interactions, repeatedly,
    until every remaining user and item has at least ``k``. Raises EmptyReviewFile if nothing
    is left; records what was removed in ``report``."""
    if k < 1:
        raise ValueError(f"k-core needs k >= 1, not {k}")
    before = {"reviews": len(df), "users": df["user_id"].nunique(),
              "items": df["item_id"].nunique()}
    rounds = 0
    while True:
        users = df["user_id"].map(df["user_id"].value_counts())
        items = df["item_id"].map(df["item_id"].value_counts())
        keep = (users >= k) & (items >= k)
        if keep.all():
            break
        df = df[keep]
        rounds += 1
    df = df.reset_index(drop=True)
    removed = {key: int(before[key] - value) for key, value in
               (("reviews", len(df)), ("users", df["user_id"].nunique()),
                ("items", df["item_id"].nunique()))}
    if report is not None:
        report.kcore = k
        report.kcore_removed = {**removed, "rounds": rounds}
        report.empty_text = int((df["review_text"] == "").sum()) if len(df) else 0
    logger.info("%d-core: removed %d reviews, %d users, %d items in %d round(s)", k,
                removed["reviews"], removed["users"], removed["items"], rounds)
    if df.empty:
        path = report.path if report is not None else "the reviews"
        raise EmptyReviewFile(f"no review of {path} survives {k}-core filtering "
                              f"({before['reviews']} reviews, {before['users']} users, "
                              f"{before['items']} items before)")
    return df


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def inter_path(dataset_dir: Path, name: str) -> Path:
    return dataset_dir / f"{name}.inter"


def summary_path(dataset_dir: Path, name: str) -> Path:
    return dataset_dir / f"{name}.summary.json"


def side_files_current(paths, dataset_dir: Path, name: str) -> bool:
    """True when every side-file (topics, review vectors) exists and is no older than the
    dataset's last conversion, its summary: a new conversion makes older side-files stale."""
    summary = summary_path(Path(dataset_dir), name)
    converted_at = summary.stat().st_mtime if summary.is_file() else float("-inf")
    return all(Path(path).is_file() and Path(path).stat().st_mtime >= converted_at for path in paths)


def inter_text(df: pd.DataFrame) -> str:
    """The RecBole ``.inter`` file's text. Times are days since the Unix epoch rounded to float32
    (:func:`dataset_preprocess.checks.stored_days`), the precision RecBole keeps, so the file
    holds exactly what RecBole will use (whole days, every Amazon time, are unchanged); floats
    are written with shortest round-trip precision; rows keep the frame's order."""
    out = df[["user_id", "item_id", "rating", "timestamp"]].set_axis(INTER_HEADER, axis=1)
    out = out.assign(**{INTER_HEADER[3]: stored_days(out[INTER_HEADER[3]])})
    return out.to_csv(sep="\t", index=False, lineterminator="\n")


def write_inter(df: pd.DataFrame, path: Path) -> None:
    """Write :func:`inter_text` of ``df`` to ``path`` atomically."""
    with atomic_write(path) as fh:
        fh.write(inter_text(df))


def _iso_date(days: float) -> str:
    return datetime.fromtimestamp(days * SECONDS_PER_DAY, tz=timezone.utc).date().isoformat()


def published_comparison(dataset: AmazonDataset | None, df: pd.DataFrame,
                         report: ReadReport) -> tuple[dict[str, Any] | None, bool | None]:
    """The published 5-core counts of the release the file came from, and whether they match.

    Reviews are compared as valid lines read (the 2018 counts include repeated user-item
    pairs), users and items where published, all before any ``--kcore`` filtering. (None, None)
    for a dataset of the user's own.
    """
    if dataset is None:
        return None, None
    release = (report.source_format if report.source_format in dataset.releases
               else dataset.releases[0])
    published = dict(dataset.counts(release) or {})
    removed = report.kcore_removed or {}  # --kcore filters after reading: compare what was read
    observed = {"reviews": len(df) + report.duplicates_dropped + removed.get("reviews", 0),
                "users": int(df["user_id"].nunique()) + removed.get("users", 0),
                "items": int(df["item_id"].nunique()) + removed.get("items", 0)}
    matches = all(observed[key] == value for key, value in published.items())
    return {"release": release, **published}, matches


def build_summary(dataset: AmazonDataset | None, df: pd.DataFrame, report: ReadReport,
                  source_sha256: str, inter_sha256: str, name: str | None = None,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``<Name>.summary.json`` content; ``dataset`` is None for a file of the user's own
    (then ``name`` names it, and ``extra`` holds the reading options)."""
    name = name or dataset.name  # type: ignore[union-attr]
    counts = {"reviews": len(df), "users": int(df["user_id"].nunique()),
              "items": int(df["item_id"].nunique())}
    ts = stored_days(df["timestamp"])
    histogram = df["rating"].value_counts().sort_index()
    published, matches = published_comparison(dataset, df, report)
    times = time_checks(df["user_id"], df["timestamp"])
    k = report.kcore or (AMAZON_KCORE if dataset is not None else None)
    kcore = kcore_check(df["user_id"], df["item_id"], k) if k else None
    return {
        "summary_version": SUMMARY_VERSION,
        "dataset": name,
        "category": dataset.category if dataset is not None else None,
        "source_file": str(report.path.resolve()),
        "source_sha256": source_sha256,
        "source_format": report.source_format,
        "on_bad_line": report.on_bad_line,
        **counts,
        "timestamp_unit": TIMESTAMP_UNIT,
        "time_range_days": [float(ts.min()), float(ts.max())],
        "time_range_iso": [_iso_date(ts.min()), _iso_date(ts.max())],
        **times,
        "kcore_check": kcore,
        "warnings": warnings_for(times, kcore),
        "rating_histogram": {f"{r:g}": int(n) for r, n in histogram.items()},
        "empty_text": report.empty_text,
        "texts_normalised": report.texts_normalised,
        "lines": report.lines,
        "line_accounting": line_accounting(df, report),
        "time_unit": report.time_unit,
        "blank_lines": report.blank_lines,
        "skipped": dict(sorted(report.skipped.items())),
        "duplicates_dropped": report.duplicates_dropped,
        "kcore": report.kcore,
        "kcore_removed": report.kcore_removed,
        "published_counts": published,
        "matches_published_counts": matches,
        "options": extra or {},
        "columns": report.columns,
        "inter_file": f"{name}.inter",
        "inter_sha256": inter_sha256,
    }


def line_accounting(df: pd.DataFrame, report: ReadReport) -> dict[str, int]:
    """Where every physical line of the raw file went; the parts add up to ``lines`` (a
    Parquet "line" is a row)."""
    removed = (report.kcore_removed or {}).get("reviews", 0)
    parts = {"header": report.header_lines, "blank": report.blank_lines,
             "reviews_kept": len(df), "duplicates_dropped": report.duplicates_dropped,
             "kcore_removed": removed, "skipped": report.skipped.total(),
             "inside_multiline_texts": report.continuation_lines}
    if sum(parts.values()) != report.lines:  # a reader that lost a line: never write that
        raise AssertionError(f"{report.path}: {report.lines} lines read, but {parts} add up "
                             f"to {sum(parts.values())}")
    return {"lines": report.lines, **parts}


def write_atomic_files(dataset: AmazonDataset | None, df: pd.DataFrame, report: ReadReport,
                       dataset_dir: Path, source_sha256: str, name: str | None = None,
                       options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``<Name>.inter`` then ``<Name>.summary.json`` into ``dataset_dir``.

    The ``.inter`` text is built and read back as RecBole reads it first
    (:func:`dataset_preprocess.loadcheck.check_loadable`: raises LoadMismatch, nothing written);
    its sha256 is that of the bytes written, not of the file read again. Then, under the
    folder's lock (:func:`dataset_preprocess.outputs.conversion_lock`), the old summary is
    removed, the ``.inter`` replaced and the summary, the completion marker, written: an
    interrupted run leaves no summary, and concurrent runs end with one writer's pair. An
    OSError is :class:`~dataset_preprocess.outputs.OutputError`.
    """
    name = name or dataset.name  # type: ignore[union-attr]
    summary_file = summary_path(dataset_dir, name)
    inter_file = inter_path(dataset_dir, name)
    text = inter_text(df)
    check_loadable(text, df, inter_file)
    inter_sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    summary = build_summary(dataset, df, report, source_sha256, inter_sha256,
                            name=name, extra=options)
    check_output(dataset_dir, [inter_file.name, summary_file.name])
    with writing(dataset_dir), conversion_lock(dataset_dir, name):
        summary_file.unlink(missing_ok=True)
        atomic_write_text(inter_file, text)
        atomic_write_json(summary_file, summary)
    if summary["matches_published_counts"] is False:
        logger.warning("%s: the lines read differ from the published 5-core counts %s",
                       name, summary["published_counts"])
    for warning in summary["warnings"]:
        logger.warning("%s: %s", name, warning)
    return summary


def existing_summary(name: str | AmazonDataset, dataset_dir: Path, source_sha256: str,
                     on_bad_line: str, options: dict[str, Any] | None = None
                     ) -> dict[str, Any] | None:
    """The summary of an earlier conversion of the same source that can be reused, or None.

    Reusable when both files exist, the source and ``.inter`` checksums match, the reading
    options (column mapping, k-core, ...) are the same, and the earlier run used the same
    bad-line policy or skipped nothing.
    """
    if isinstance(name, AmazonDataset):
        name = name.name
    summary_file = summary_path(dataset_dir, name)
    inter_file = inter_path(dataset_dir, name)
    if not (summary_file.is_file() and inter_file.is_file()):
        return None
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("summary_version") != SUMMARY_VERSION:
        return None
    if summary.get("source_sha256") != source_sha256:
        return None
    if summary.get("options", {}) != (options or {}):
        return None
    if summary.get("on_bad_line") != on_bad_line and summary.get("skipped"):
        return None
    if summary.get("inter_sha256") != sha256_file(inter_file):
        return None
    return summary
