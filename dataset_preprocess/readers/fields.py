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
- **times** are Unix seconds (a number) or a date (ISO 8601, or the ``strptime`` format given),
  between 1970-01-01 and 2100-01-01. A number that reads as a date written as digits
  (``20150304``) is ambiguous and refused unless a time format says which it is
  (``--time-format %Y%m%d`` or ``--time-format unix``).
- **texts** are strings, or null / missing (no text).
- **JSON objects** with a key given twice are refused (the last value would win silently).
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timezone
from typing import Any

try:  # the exact list pandas' CSV reader (and so RecBole's loader) reads as missing
    from pandas._libs.parsers import STR_NA_VALUES as _PANDAS_NA
except ImportError:  # pragma: no cover - private name; the list as of pandas 2.x
    _PANDAS_NA = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
                  "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}

MISSING_IDS = frozenset(_PANDAS_NA)
MIN_UNIX_TIME = 0.0  # 1970-01-01
MAX_UNIX_TIME = 4_102_444_800.0  # 2100-01-01: later times are typos or milliseconds
UNIX_FORMAT = "unix"  # --time-format unix: numbers are Unix seconds, whatever they look like
_BAD_ID = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_DIGIT_DATE = re.compile(r"(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")


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
    """A finite number from a number or a numeric string, else None."""
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
    """Unix seconds of a time value (number, numeric string, date string, datetime)."""
    if value is None or value == "":
        raise BadValue("missing_field", f"{key} is missing or empty")
    if isinstance(value, bool):
        raise BadValue("bad_time", f"{key} {value!r} is not a time")
    seconds = None
    if time_format is None or time_format == UNIX_FORMAT:
        seconds = number(value)
        if seconds is None and time_format == UNIX_FORMAT:
            raise BadValue("bad_time", f"{key} {value!r} is not a number of Unix seconds")
        if seconds is not None and time_format is None and _looks_like_digit_date(value):
            text = str(value).strip()
            raise BadValue("bad_time", f"{key} {value!r} is ambiguous: a date written as digits "
                                       f"({text[:4]}-{text[4:6]}-{text[6:8]}) or Unix seconds "
                                       f"({_iso(seconds)}); say which with --time-format %Y%m%d "
                                       "or --time-format unix")
    if seconds is None:
        moment = _moment(value, time_format)
        if moment is None:
            hint = f"the format {time_format!r}" if time_format else (
                "Unix seconds or an ISO 8601 date (or give --time-format)")
            raise BadValue("bad_time", f"{key} {value!r} is not {hint}")
        seconds = moment.timestamp()
    if not MIN_UNIX_TIME <= seconds < MAX_UNIX_TIME:
        raise BadValue("bad_time", f"{key} {value!r} is not a time in [1970-01-01, 2100-01-01)"
                                   " (Unix seconds are expected: milliseconds are 1000 times "
                                   "too large)")
    return seconds


def _looks_like_digit_date(value: Any) -> bool:
    if isinstance(value, float) and not value.is_integer():
        return False
    text = str(int(value)) if is_number(value) else str(value).strip()
    if not _DIGIT_DATE.fullmatch(text):
        return False
    try:
        datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return True


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
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        text = str(value).strip()
        try:
            moment = (datetime.strptime(text, time_format) if time_format
                      else datetime.fromisoformat(text))
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
