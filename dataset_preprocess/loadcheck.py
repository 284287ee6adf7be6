"""Read a ``.inter`` file's bytes back exactly as RecBole 1.2.1's loader does, before they are
written, so that what RecBole loads is what was converted.

RecBole (``Dataset._load_feat``) reads atomic files with ``pandas.read_csv(engine="python")``,
token columns as ``str`` and float columns as ``float64``, pandas' default missing-value
strings on, then drops every interaction whose user or item id came out missing
(``_filter_nan_user_or_item``, one log line). :func:`check_loadable` does the same and compares
the users, items and interactions with the conversion's counts, and the ratings and times with
the values meant (as float32, the precision RecBole keeps); a difference is
:class:`LoadMismatch`, and nothing is written.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from dataset_preprocess.readers.fields import RECBOLE_FIELD_LIMIT


class LoadMismatch(ValueError):
    """RecBole would load something other than what was converted."""


def recbole_read(text: str) -> pd.DataFrame:
    """The ``.inter`` text as RecBole's loader reads it (columns named without their types),
    rows with a missing user or item dropped as RecBole drops them."""
    head = text.split("\n", 1)[0]
    dtype = {}
    for field_type in head.split("\t"):
        _, ftype = field_type.split(":")
        dtype[field_type] = np.float64 if ftype == "float" else str
    limit = csv.field_size_limit(RECBOLE_FIELD_LIMIT)  # a fresh process's limit, RecBole's
    try:
        frame = pd.read_csv(io.StringIO(text), delimiter="\t", dtype=dtype, engine="python")
    except (csv.Error, pd.errors.ParserError) as exc:
        raise LoadMismatch(f"RecBole's loader cannot read the .inter text ({exc}); nothing was "
                           "written") from None
    finally:
        csv.field_size_limit(limit)
    frame.columns = [c.split(":")[0] for c in frame.columns]
    return frame.dropna(subset=["user_id", "item_id"])


def check_loadable(text: str, expected: pd.DataFrame, path: Path) -> None:
    """Raise :class:`LoadMismatch` unless RecBole would load exactly ``expected``'s users, items,
    interactions, ratings and (float32) times from ``text``."""
    loaded = recbole_read(text)
    got = (len(loaded), loaded["user_id"].nunique(), loaded["item_id"].nunique())
    want = (len(expected), expected["user_id"].nunique(), expected["item_id"].nunique())
    problem = None
    if got != want:
        problem = (f"{got[0]:,} interactions, {got[1]:,} users and {got[2]:,} items, but the "
                   f"conversion has {want[0]:,}, {want[1]:,} and {want[2]:,}")
    elif not (loaded["user_id"].tolist() == expected["user_id"].tolist()
              and loaded["item_id"].tolist() == expected["item_id"].tolist()):
        problem = "other user or item ids than the conversion's"
    else:
        for column in ("rating", "timestamp"):
            if not np.array_equal(loaded[column].to_numpy(np.float32),
                                  expected[column].to_numpy(np.float32)):
                problem = f"other {column} values than the conversion's"
    if problem:
        raise LoadMismatch(f"{path}: RecBole's loader would read {problem}; nothing was "
                           "written (an id it reads as missing or that it quotes?)")
