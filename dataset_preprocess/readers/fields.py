"""One parser per field: every reader (Amazon JSON lines, CSV, TSV, JSON lines, Parquet) turns a
raw value into an id, a rating, a time or a text through the functions here, so a value is
accepted or refused the same way whatever the format.

A value that cannot be read exactly raises :class:`BadValue` (reason + detail naming the value);
the caller adds the file and line and applies the bad-line policy. Nothing is guessed:

- **ids** are strings (or integers where the format has no strings, e.g. a Parquet int column)
  without whitespace or control characters, and not one of the strings RecBole's pandas reader
  takes for a missing value (``NA``, ``nan``, ``null``, ``None``, ...: :data:`MISSING_IDS`),
  which RecBole would silently drop from the ``.inter`` file.
- **ratings** are numbers, or numeric strings, in [1, 5].
- **times** are a date (ISO 8601, or the ``strptime`` format given) or a number. Without a
  time format, a number is read as Unix seconds only where that is plausible for a review
  (1990-01-01 to 2100-01-01), or as Unix milliseconds where *that* is (detected per column,
  said in the summary; a column mixing both is refused). Any other number is refused with what
  it reads as and the ``--time-format`` that reads it: a date written as digits (``20150304``,
  ``20150304.0``: ``%Y%m%d``; ``201503``: ``%Y%m``; ``150304``: ``%y%m%d``; ``2015``: ``%Y``),
  an Excel serial day (``42067``: ``excel``), days since 1970 (``16436``: ``unix_days``); so no
  time of 1970 is stored unless a format says so (``unix``, ``unix_ms``, ``unix_days``,
  ``excel`` read every number in that unit). Times lie in [1970-01-01, 2100-01-01).
- **ids** longer than :data:`RECBOLE_FIELD_LIMIT` characters are refused: RecBole's loader
  (pandas' python engine, Python's csv module) cannot read a longer field.
- **texts** are strings, or null / missing (no text).
- **JSON objects** with a key given twice are refused (the last value would win silently).
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

try:  # the exact list pandas' CSV reader (and so RecBole's loader) reads as missing
    from pandas._libs.parsers import STR_NA_VALUES as _PANDAS_NA
except ImportError:  # pragma: no cover - private name; the list as of pandas 2.x
    _PANDAS_NA = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                  "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}

MISSING_IDS = frozenset(_PANDAS_NA)
MIN_UNIX_TIME = 0.0  # 1970-01-01
MAX_UNIX_TIME = 4_102_444_800.0  # 2100-01-01: later times are typos or milliseconds
MIN_REVIEW_TIME = 631_152_000.0  # 1990-01-01: earlier "Unix seconds" are some other number
UNIX_FORMAT = "unix"  # --time-format unix: numbers are Unix seconds, whatever they look like
SECONDS_PER_DAY = 86_400
EXCEL_EPOCH_DAYS = 25_569  # Excel's day 0 is 1899-12-30, 25,569 days before 1970-01-01
# --time-format names for numbers in one unit: seconds = (number + offset) * scale
NUMBER_FORMATS: dict[str, tuple[float, float]] = {
    UNIX_FORMAT: (0.0, 1.0), "unix_ms": (0.0, 0.001), "unix_days": (0.0, SECONDS_PER_DAY),
    "excel": (-EXCEL_EPOCH_DAYS, SECONDS_PER_DAY)}
# The csv module's default field limit, which RecBole's loader (pandas' python engine) keeps.
RECBOLE_FIELD_LIMIT = 131_072
_BAD_ID = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class BadValue(Exception):
    """One value's (or line's) problem, before the bad-line policy decides what to do."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def is_number(value: Any) -> bool:
    """A finite JSON number (bool is an int in Python, but not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def number(value: Any) -> float | None:
    """A finite number from a number (a Parquet decimal too) or a numeric string, else None."""
    if isinstance(value, Decimal):
        value = float(value)
    if is_number(value):
        return float(value)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        parsed = float(value)
        return parsed if is_number(parsed) else None
    return None


def parse_json_object(line: str) -> dict[str, Any]:
    """A JSON object; a key given twice, or anything but an object, is ``malformed_json``."""
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(items)
        if len(obj) != len(items):
            keys = [k for k, _ in items]
            twice = next(k for i, k in enumerate(keys) if k in keys[:i])
            raise BadValue("malformed_json", f"the key {twice!r} appears twice in one object "
                                             "(which value is meant?)")
        return obj

    try:
        obj = json.loads(line, object_pairs_hook=pairs)
    except ValueError as exc:
        raise BadValue("malformed_json", f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise BadValue("malformed_json", f"a JSON {type(obj).__name__}, not an object")
    return obj


def parse_id(key: str, value: Any, allow_int: bool = True) -> str:
    """An id as the ``.inter`` file will hold it; see the module docstring."""
    if value is None or value == "":
        raise BadValue("missing_field", f"{key} is missing or empty")
    if isinstance(value, int) and not isinstance(value, bool) and allow_int:
        return str(value)
    if not isinstance(value, str) or _BAD_ID.search(value):
        raise BadValue("bad_id", f"{key} {value!r} is not a string without whitespace")
    if len(value) > RECBOLE_FIELD_LIMIT:
        raise BadValue("bad_id", f"{key} {value[:20]!r}... is {len(value):,} characters long; "
                                 f"RecBole's loader reads at most {RECBOLE_FIELD_LIMIT:,} per "
                                 "field (Python's csv field limit), so it could not load the "
                                 "file; shorten such ids (e.g. a hash)")
    if value in MISSING_IDS:
        raise BadValue("bad_id", f"{key} {value!r} would be read as a missing value by RecBole's "
                                 f"loader (pandas reads {', '.join(sorted(MISSING_IDS - {''}))} "
                                 "as missing) and its rows dropped; rename such ids")
    return value


def parse_rating(key: str, value: Any) -> float:
    if value is None or value == "":
        raise BadValue("missing_field", f"{key} is missing or empty")
    rating = None if isinstance(value, bool) else number(value)
    if rating is None or not 1 <= rating <= 5:
        raise BadValue("bad_rating", f"{key} {value!r} is not a number in [1, 5]")
    return rating


def parse_text(key: str, value: Any) -> str:
    """The raw text ("" for none); cleaning is :func:`dataset_preprocess.readers.amazon.clean_text`."""
    if value is None or (isinstance(value, float) and value != value):  # NaN from Parquet
        return ""
    if not isinstance(value, str):
        raise BadValue("bad_text", f"{key} is a {type(value).__name__}, not a string")
    return value


def parse_time(key: str, value: Any, time_format: str | None = None) -> float:
    """Unix seconds of one time value (number, numeric string, date string, datetime)."""
    return TimeColumn(key, time_format)(value)


class TimeColumn:
    """The reader of one file's time column: what a number means is decided for the column (a
    first number in milliseconds makes every number milliseconds), see the module docstring."""

    def __init__(self, key: str, time_format: str | None = None, column: str | None = None
                 ) -> None:
        self.key, self.time_format, self.column = key, time_format, column
        self.unit: str | None = None  # "seconds" or "milliseconds", once a number was read

    def __call__(self, value: Any) -> float:
        key, time_format = self.key, self.time_format
        where = f"{key} {value!r}" + (f" (column {self.column!r})" if self.column else "")
        if value is None or value == "" or (isinstance(value, float) and value != value):
            raise BadValue("missing_field", f"{key} is missing or empty")
        if isinstance(value, bool):
            raise BadValue("bad_time", f"{where} is not a time")
        seconds = None
        if time_format in NUMBER_FORMATS:
            amount = number(value)
            if amount is None:
                raise BadValue("bad_time", f"{where} is not a number (--time-format "
                                           f"{time_format})")
            offset, scale = NUMBER_FORMATS[time_format]
            seconds = (amount + offset) * scale
        elif time_format is None and number(value) is not None:
            seconds = self._unix(value, number(value), where)  # type: ignore[arg-type]
        else:
            moment = _moment(value, time_format)
            if moment is None:
                hint = f"the format {time_format!r}" if time_format else (
                    "Unix seconds or an ISO 8601 date (or give --time-format)")
                raise BadValue("bad_time", f"{where} is not {hint}")
            seconds = moment.timestamp()
        if not MIN_UNIX_TIME <= seconds < MAX_UNIX_TIME:
            raise BadValue("bad_time", f"{where} is not a time in [1970-01-01, 2100-01-01)"
                                       " (Unix seconds are expected: milliseconds are 1000 "
                                       "times too large)")
        return seconds

    def _unix(self, value: Any, amount: float, where: str) -> float:
        """Unix seconds or milliseconds, whichever is plausible for a review, else BadValue."""
        if MIN_REVIEW_TIME <= amount < MAX_UNIX_TIME:
            unit, seconds = "seconds", amount
        elif MIN_REVIEW_TIME * 1000 <= amount < MAX_UNIX_TIME * 1000:
            unit, seconds = "milliseconds", amount / 1000
        else:
            raise BadValue("bad_time", _not_unix(where, value, amount))
        if self.unit is not None and unit != self.unit:
            raise BadValue("bad_time", f"{where} reads as Unix {unit}, but the column's earlier "
                                       f"numbers are Unix {self.unit}; one column holds one unit "
                                       "(fix the file, or say which with --time-format unix or "
                                       "unix_ms)")
        self.unit = unit
        return seconds


def _digits(value: Any) -> str | None:
    """The digits of a whole number (``20150304``, ``20150304.0``, ``"20150304"``), else None."""
    amount = number(value)
    if amount is None or not amount.is_integer() or amount < 0:
        return None
    return str(int(amount))


# (digit count, strptime format, what the digits read as); the first shape that parses wins.
_DIGIT_SHAPES = ((14, "%Y%m%d%H%M%S", "a date and time written as digits"),
                 (12, "%Y%m%d%H%M", "a date and time written as digits"),
                 (8, "%Y%m%d", "a date written as digits"),
                 (6, "%Y%m", "a month written as digits"),
                 (6, "%y%m%d", "a date written as digits"),
                 (4, "%Y", "a year"))


def _not_unix(where: str, value: Any, amount: float) -> str:
    """Why ``value`` is not read as Unix seconds: what it reads as, and the format that reads it."""
    as_seconds = f"Unix seconds ({_iso(amount)}, implausible for a review)"
    digits = _digits(value)
    shaped = None
    for count, fmt, what in _DIGIT_SHAPES:
        if digits is None or len(digits) != count or not digits.startswith(
                ("19", "20") if "%Y" in fmt else ""):
            continue
        try:
            moment = datetime.strptime(digits, fmt)
        except ValueError:
            shaped = shaped or (fmt, what)
            continue
        shown = moment.isoformat(sep=" ") if "%H" in fmt else moment.date().isoformat()
        if fmt == "%Y":
            shown = digits
        elif fmt == "%Y%m":
            shown = shown[:7]
        return (f"{where} is ambiguous: {what} ({shown}), or {as_seconds}; read the column "
                f"with --time-format {fmt} (or --time-format unix if the numbers really are "
                "seconds)")
    if shaped is not None:
        fmt, what = shaped
        return (f"{where} is shaped like {what} ({fmt}) but is no such date, and as {as_seconds}"
                f"; fix the value (the column reads with --time-format {fmt}), or say "
                "--time-format unix if the numbers really are seconds")
    excel = (amount - EXCEL_EPOCH_DAYS) * SECONDS_PER_DAY
    days = amount * SECONDS_PER_DAY
    for seconds, what, fmt in ((excel, "an Excel serial day number", "excel"),
                               (days, "a number of days since 1970-01-01", "unix_days")):
        if MIN_REVIEW_TIME <= seconds < MAX_UNIX_TIME and (fmt != "unix_days" or amount < 32_874):
            return (f"{where} is ambiguous: {what} ({_iso(seconds)}), or {as_seconds}; read "
                    f"the column with --time-format {fmt} (or --time-format unix if the numbers "
                    "really are seconds)")
    return (f"{where} is not plausible as Unix seconds of a review ({_iso(amount)}: before "
            "1990-01-01 or after 2100-01-01) nor as milliseconds; if they really are Unix "
            "seconds, say so with --time-format unix, else say what they are with --time-format "
            "(unix_ms, unix_days, excel, or a strptime format such as %Y%m%d)")


def _iso(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).date().isoformat()
    except (OverflowError, OSError, ValueError):
        return "out of range"


def _moment(value: Any, time_format: str | None) -> datetime | None:
    if hasattr(value, "to_pydatetime"):  # pandas.Timestamp
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value).strip()
        if isinstance(value, float) or re.fullmatch(r"\d+\.0*", text):
            text = _digits(value)  # 20150304.0 (a float column, or one written as floats)
        if text is None:
            return None
        try:
            moment = (datetime.strptime(text, time_format) if time_format
                      else datetime.fromisoformat(text))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
