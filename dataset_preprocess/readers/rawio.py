"""Reading raw review files line by line, with every file-level failure turned into one clear error.

Both readers (:mod:`dataset_preprocess.readers.amazon` for Amazon JSON lines and
:mod:`dataset_preprocess.readers.own_file` for a user's CSV/TSV/JSON lines) read through
:func:`iter_lines`, which

- decompresses gzip when the file starts with the gzip magic bytes (whatever its suffix);
- turns a truncated or corrupt gzip stream into :class:`BadRawFile` naming the file and the
  last line read, instead of an ``EOFError``/``zlib.error`` traceback;
- refuses a binary file (NUL bytes in the first 64 KiB, which also catches UTF-16) up front,
  and a NUL byte on any later line the same way (file-level error naming the line);
- turns an OS error while reading into :class:`BadRawFile` (:func:`check_raw_path` refuses a
  folder, a FIFO or an unreadable file before anything is read);
- never reads more than ``max_line_bytes`` of one line into memory: a longer line is reported
  to the caller (``too_long``) and the rest of it is skipped in chunks.

Lines are yielded as bytes; :func:`decode_line` decodes them as strict UTF-8 and says where the
first bad byte is.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_LINE_BYTES = 1 << 20  # 1 MiB: the longest 2014 Instrument line is 27 KB
SNIFF_BYTES = 1 << 16
_CHUNK = 1 << 16


class BadRawFile(ValueError):
    """The raw file as a whole cannot be read (corrupt or truncated gzip, binary, ...)."""

    def __init__(self, path: Path, detail: str, line_no: int | None = None) -> None:
        where = f"{path}" if line_no is None else f"{path}, line {line_no}"
        super().__init__(f"{where}: {detail}")
        self.path, self.detail, self.line_no = path, detail, line_no


@dataclass
class RawLine:
    """One physical line: its 1-based number, its bytes (without the end of line, at most
    ``max_line_bytes``), and whether it was longer than that."""

    line_no: int
    data: bytes
    too_long: bool = False
    length: int = 0


def is_gzip(path: str | os.PathLike[str]) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_raw(path: str | os.PathLike[str]) -> IO[bytes]:
    """Binary stream of a raw file, decompressed if it starts with the gzip magic bytes."""
    return gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")


_GZIP_ERRORS = (EOFError, gzip.BadGzipFile, zlib.error)


def _gzip_problem(exc: BaseException, line_no: int = 0) -> str:
    where = f" after line {line_no}" if line_no else ""
    if isinstance(exc, EOFError):
        return (f"the gzip stream ends early{where}: the file is truncated (an interrupted "
                "download?); fetch it again")
    return f"the gzip data is corrupt{where} ({exc}); fetch the file again"


def check_raw_path(path: Path) -> None:
    """Raise :class:`BadRawFile` for a raw path that exists but is not a readable regular file
    (a folder, a FIFO, a device, no read permission); a missing path is left to the caller."""
    try:
        if not path.exists():
            return
    except OSError as exc:  # a name too long for the OS, ...
        raise BadRawFile(path, f"cannot be used as a path ({exc.strerror or exc})") from None
    if path.is_dir():
        raise BadRawFile(path, "is a folder, not a review file; give the file inside it")
    if not path.is_file():
        raise BadRawFile(path, "is not a regular file (a FIFO, socket or device, which could "
                               "be read only once); copy it into a file first")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise BadRawFile(path, f"cannot be read ({exc.strerror or exc}); check its "
                               "permissions") from None


def sniff(path: Path) -> None:
    """Raise :class:`BadRawFile` if the (decompressed) start of ``path`` is not text."""
    try:
        with open_raw(path) as fh:
            head = fh.read(SNIFF_BYTES)
    except _GZIP_ERRORS as exc:
        raise BadRawFile(path, _gzip_problem(exc)) from None
    except OSError as exc:
        raise BadRawFile(path, f"cannot be read ({exc.strerror or exc})") from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (b"\x00" in head and _looks_utf16(head)):
        raise BadRawFile(path, "the file is UTF-16 text, not UTF-8; convert it first, e.g. "
                               "iconv -f UTF-16 -t UTF-8")
    nul = head.find(b"\x00")
    if nul >= 0:
        raise BadRawFile(path, f"the file is binary, not text (a NUL byte at offset {nul}); "
                               "expected UTF-8 review lines")


def _looks_utf16(head: bytes) -> bool:
    """Most odd or most even bytes NUL: ASCII-range text stored as UTF-16."""
    sample = head[:4096]
    zeros_even = sample[0::2].count(0)
    zeros_odd = sample[1::2].count(0)
    half = max(1, len(sample) // 2)
    return max(zeros_even, zeros_odd) > 0.4 * half and min(zeros_even, zeros_odd) < 0.05 * half


def iter_lines(path: str | os.PathLike[str],
               max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[RawLine]:
    """The physical lines of ``path`` (gzip or plain), ``\\n``-terminated, ``\\r\\n`` trimmed.

    Raises :class:`BadRawFile` for a binary file or a truncated/corrupt gzip stream.
    """
    path = Path(path)
    if max_line_bytes < 1:
        raise ValueError(f"max_line_bytes must be positive, not {max_line_bytes}")
    sniff(path)
    line_no = 0
    with open_raw(path) as fh:
        while True:
            try:
                data = fh.readline(max_line_bytes + 1)
                if not data:
                    return
                line_no += 1
                length = len(data)
                too_long = len(data) > max_line_bytes and not data.endswith(b"\n")
                if too_long:  # skip the rest of the line without holding it in memory
                    data = data[:max_line_bytes]
                    while True:
                        rest = fh.readline(_CHUNK)
                        length += len(rest)
                        if not rest or rest.endswith(b"\n"):
                            break
            except _GZIP_ERRORS as exc:
                raise BadRawFile(path, _gzip_problem(exc, line_no)) from None
            except OSError as exc:
                raise BadRawFile(path, f"cannot be read ({exc.strerror or exc})", line_no or None
                                 ) from None
            nul = data.find(b"\x00")
            if nul >= 0:  # as in the first 64 KiB (sniff): binary, wherever it is
                raise BadRawFile(path, f"the file is binary, not text (a NUL byte at byte "
                                       f"{nul + 1} of the line); expected UTF-8 review lines",
                                 line_no)
            yield RawLine(line_no, data.rstrip(b"\r\n"), too_long, length)


def decode_line(data: bytes) -> str:
    """Strict UTF-8; raises ``ValueError`` naming the first invalid byte and its column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[exc.start:exc.start + 1]
        raise ValueError(f"not UTF-8 (byte 0x{bad.hex()} at byte {exc.start + 1} of the "
                         "line); convert the file to UTF-8, e.g. iconv -f LATIN1 -t UTF-8"
                         ) from None
