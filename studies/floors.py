"""The popularity floor computed without RecBole: pandas and numpy on the atomic file.

RecBole 1.2.1's own ``Pop`` miscounted (``recbole_sdmtmp/compat.py``), and every table's floor
was wrong for it; so the floor the tables print is checked against this independent count:
each user's interactions split by time as the ``paper`` protocol splits them (or at the two
global cuts of ``global_time``), items scored by their number of training interactions, and the
HR@K a ranking by those counts can reach. Ties
between equal counts can be broken either way, so the answer is a range: the pessimistic HR@K
(the user's test items ranked last among the items tied at the K-th score) and the optimistic
one (ranked first).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass
class UserSplit:
    train: list  # item tokens, oldest first
    valid: list
    test: list


def read_interactions(inter_file: Path) -> pd.DataFrame:
    """The atomic file's rows, sorted by user, then time (file order on a tie)."""
    frame = pd.read_csv(inter_file, sep="\t", dtype=str)
    frame.columns = [column.split(":")[0] for column in frame.columns]
    frame["time"] = frame["timestamp"].astype(float)
    frame["order"] = np.arange(len(frame))
    return frame.sort_values(["user_id", "time", "order"], kind="stable")


def paper_split(inter_file: Path, ratios=(0.7, 0.1, 0.2)) -> dict[str, UserSplit]:
    """Per user, by time (file order on a tie): the newest ``ratios[2]`` test, the ``ratios[1]``
    before it validation, the rest training, with RecBole's rounding (every part but the first
    rounded down, an empty part that its ratio asks for given one record while training keeps
    more than one)."""
    frame = read_interactions(inter_file)
    total = sum(ratios)
    split = {}
    for user, rows in frame.groupby("user_id", sort=False):
        items = rows["item_id"].tolist()
        n = len(items)
        sizes = [int(r / total * n) for r in ratios]
        sizes[0] = n - sum(sizes[1:])
        for part in (2, 1):
            if sizes[0] > 1 and 0 < ratios[part] / total * n < 1:
                sizes[part] += 1
                sizes[0] -= 1
        n_train, n_valid = sizes[0], sizes[1]
        split[user] = UserSplit(items[:n_train], items[n_train:n_train + n_valid], items[n_train + n_valid:])
    return split


def global_time_split(inter_file: Path, cuts=(0.8, 0.9)) -> dict[str, UserSplit]:
    """Per user: training before the first cut, validation between the cuts, test from the second
    cut on; the cuts are the ``cuts`` quantiles of every interaction's time (numpy's linear
    interpolation). A user is a test case only with something on each side of the second cut."""
    frame = read_interactions(inter_file)
    first, second = np.quantile(frame["time"].to_numpy(), cuts)
    split = {}
    for user, rows in frame.groupby("user_id", sort=False):
        items, times = rows["item_id"].to_numpy(), rows["time"].to_numpy()
        split[user] = UserSplit(items[times < first].tolist(), items[(times >= first) & (times < second)].tolist(),
                                items[times >= second].tolist())
    return split


def training_counts(split: dict[str, UserSplit]) -> dict[str, int]:
    """Each item's number of training interactions (what a correct Pop scores)."""
    counts: dict[str, int] = {}
    for user in split.values():
        for item in user.train:
            counts[item] = counts.get(item, 0) + 1
    return counts


def popularity_hit_bounds(split: dict[str, UserSplit], k: int = 10) -> tuple[float, float]:
    """(pessimistic, optimistic) test HR@k of ranking by training counts: every item of the file
    but the user's training and validation items is a candidate; a test case is a user with test
    items and a history before them (under ``paper`` every user)."""
    catalogue = np.array(sorted({item for user in split.values() for item in user.train + user.valid + user.test}))
    counts = training_counts(split)
    score = np.array([counts.get(item, 0) for item in catalogue])
    cases = [user for user in split.values() if user.test and (user.train or user.valid)]
    pessimistic = optimistic = 0
    for user in cases:
        keep = ~np.isin(catalogue, user.train + user.valid)
        candidates, positive = score[keep], np.isin(catalogue[keep], user.test)
        kth = np.sort(candidates)[::-1][min(k, len(candidates)) - 1]
        above, tied = candidates > kth, candidates == kth
        free = k - int(above.sum())  # slots left for the tied items
        hit_above = bool((positive & above).any())
        optimistic += hit_above or bool((positive & tied).any())
        pessimistic += hit_above or int(tied.sum() - (positive & tied).sum()) < free
    return pessimistic / len(cases), optimistic / len(cases)
