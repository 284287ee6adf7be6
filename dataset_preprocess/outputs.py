"""The output side of a conversion: paths checked before the raw file is read, OS errors turned
into one paragraph, and one writer at a time per dataset folder.

- :func:`check_output` refuses, before any reading, an output path where a file stands for a
  folder or a folder for a file (``--out-dir`` a file, ``<Name>`` a file, ``<Name>.inter`` a
  folder) and a folder this process may not write into.
- :func:`writing` turns any ``OSError`` while writing (a full disk, permissions the check above
  could not see, e.g. as root on a read-only file system) into :class:`OutputError` and removes
  the folders this conversion created, if nothing but its lock is in them.
- :func:`conversion_lock` holds an exclusive ``flock`` on ``<Name>/.<Name>.lock`` while the
  ``.inter`` and the summary are replaced, so two conversions into one folder end with one
  writer's complete pair, never one's ``.inter`` beside the other's summary.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, writes are still atomic
    fcntl = None  # type: ignore[assignment]


class OutputError(ValueError):
    """The converted files cannot be written where they were asked for."""


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def check_output(dataset_dir: Path, names: list[str]) -> None:
    """Raise :class:`OutputError` if ``dataset_dir`` and its files ``names`` cannot be written."""
    for path in [*reversed(dataset_dir.parents), dataset_dir]:
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path} is a file, but the converted dataset needs it to be a "
                              "folder; nothing was written (choose another --out-dir or move "
                              "the file)")
    for name in names:
        target = dataset_dir / name
        if target.is_dir():
            raise OutputError(f"{target} is a folder, but the conversion writes a file there; "
                              "nothing was written (remove or rename the folder)")
    existing = next(p for p in [dataset_dir, *dataset_dir.parents] if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{existing} is not writable, so {dataset_dir} cannot be written; "
                          "nothing was written (choose another --out-dir)")


@contextmanager
def writing(dataset_dir: Path) -> Iterator[None]:
    """Create ``dataset_dir``; an OSError inside becomes :class:`OutputError`, and the folder
    is removed again if it was created here."""
    missing = [p for p in [dataset_dir, *dataset_dir.parents] if not p.exists()]
    try:
        dataset_dir.mkdir(parents=True, exist_ok=True)
        yield
    except OSError as exc:
        _remove_if_only_ours(missing)
        where = exc.filename or dataset_dir
        raise OutputError(f"cannot write {where}: {_why(exc)}; nothing was written") from None


def _remove_if_only_ours(created: list[Path]) -> None:
    """Remove the folders this conversion created (deepest first) while they hold nothing but
    its lock file: a concurrent conversion's files are never removed."""
    for folder in created:
        try:
            leftovers = list(folder.iterdir()) if folder.is_dir() else None
        except OSError:
            return
        if leftovers is None:
            continue
        if len(leftovers) == 1 and leftovers[0].name.startswith(".") and \
                leftovers[0].name.endswith(".lock"):
            leftovers[0].unlink(missing_ok=True)
        try:
            folder.rmdir()
        except OSError:
            return


@contextmanager
def conversion_lock(dataset_dir: Path, name: str) -> Iterator[None]:
    """An exclusive lock on ``<dataset_dir>/.<name>.lock`` (kept; deleting it would race)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(dataset_dir / f".{name}.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
