"""What a researcher must know about a converted dataset before trusting its time order or its
k-core, computed the same way for the summary (from the converted frame) and for
``results/datasets.md`` (from the ``.inter`` file): both read the times as stored.

- **Times as stored**: the ``.inter`` holds days since the Unix epoch rounded to float32, the
  precision RecBole keeps (:func:`stored_days`). Whole days (every Amazon time) are exact;
  second-resolution times of an own file move by up to half a float32 step (42 s from 1992-06
  to 2014-11, 84 s from then to 2059). :func:`time_checks` counts the reviews whose time was rounded and
  those whose distinct times collapsed into one stored value within a user.
- **Ties**: the share of users (with two or more reviews) whose reviews all share one stored
  time; their "chronological" order is then by item id (the ``.inter`` sorts a user's reviews by
  time, then item id, and RecBole's sort is stable).
- **k-core**: whether every user and item still has k interactions once repeated (user, item)
  pairs are dropped (Amazon's published 5-core files count repeated pairs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

TIE_ORDER = ("by item id: a user's reviews are sorted by time, then item id, in the .inter, and "
             "RecBole's sort is stable")


def stored_days(days: pd.Series | np.ndarray) -> np.ndarray:
    """Days as the ``.inter`` stores them: rounded to float32 (exact for whole days)."""
    return np.asarray(days, dtype=np.float64).astype(np.float32).astype(np.float64)


def time_checks(users: pd.Series, days: pd.Series) -> dict[str, Any]:
    """Rounding and ties of the times ``days`` (float64 days, one per review of ``users``)."""
    raw = np.asarray(days, dtype=np.float64)
    stored = stored_days(raw)
    frame = pd.DataFrame({"user": np.asarray(users), "raw": raw, "stored": stored})
    merged = frame.groupby(["user", "stored"])["raw"].transform("nunique") > 1
    per_user = frame.groupby("user")["stored"].agg(["size", "nunique"])
    several = per_user[per_user["size"] >= 2]
    one_time = int((several["nunique"] == 1).sum())
    return {
        "timestamps_exact_in_float32": bool(np.array_equal(stored, raw)),
        "times_rounded": int((stored != raw).sum()),
        "times_merged": int(merged.sum()),
        "users_with_2_or_more": int(len(several)),
        "users_all_one_time": one_time,
        "users_all_one_time_share": one_time / len(several) if len(several) else 0.0,
        "tie_order": TIE_ORDER,
    }


def kcore_check(users: pd.Series, items: pd.Series, k: int) -> dict[str, Any]:
    """Users and items with fewer than ``k`` interactions (distinct pairs)."""
    user_counts, item_counts = pd.Series(users).value_counts(), pd.Series(items).value_counts()
    below = {"users_below_k": int((user_counts < k).sum()),
             "items_below_k": int((item_counts < k).sum())}
    return {"k": k, **below, "is_kcore": not any(below.values())}


def counted(number: int, noun: str) -> str:
    """'1 item', '12 items'."""
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def warnings_for(times: dict[str, Any], kcore: dict[str, Any] | None) -> list[str]:
    """The sentences the summary, the command's output and results/datasets.md print."""
    found = []
    if times["users_all_one_time"]:
        found.append(f"{times['users_all_one_time']:,} of {times['users_with_2_or_more']:,} "
                     f"users with 2+ reviews ({times['users_all_one_time_share']:.1%}) have "
                     f"every review at one time; their order is {TIE_ORDER}")
    if times["times_merged"]:
        found.append(f"{times['times_merged']:,} reviews share their stored time (float32 days) "
                     "with another review of the same user at a different raw time; they keep "
                     "the raw order in the .inter")
    if kcore is not None and not kcore["is_kcore"]:
        found.append(f"not a {kcore['k']}-core after dropping repeated (user, item) pairs: "
                     f"{counted(kcore['users_below_k'], 'user')} and {counted(kcore['items_below_k'], 'item')} "
                     f"have fewer than {kcore['k']} interactions (--kcore {kcore['k']} "
                     "restores it)")
    return found
