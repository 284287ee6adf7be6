"""The popularity floor computed without RecBole: pandas and numpy on the atomic file.

RecBole 1.2.1's own ``Pop`` miscounted (``recbole_sdmtmp/compat.py``), and every table's floor
was wrong for it; so the floor the tables print is checked against this independent count:
each user's interactions split by time as the ``paper`` protocol splits them, items scored by
their number of training interactions, and the HR@K a ranking by those counts can reach. Ties
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


def paper_split(inter_file: Path, ratios=(0.7, 0.1, 0.2)) -> dict[str, UserSplit]:
    """Per user, by time (file order on a tie): the newest ``ratios[2]`` test, the ``ratios[1]``
    before it validation, the rest training, with RecBole's rounding (every part but the first
    rounded down, an empty part that its ratio asks for given one record while training keeps
    more than one)."""
    frame = pd.read_csv(inter_file, sep="\t", dtype=str)
    frame.columns = [column.split(":")[0] for column in frame.columns]
    frame["time"] = frame["timestamp"].astype(float)
    frame["order"] = np.arange(len(frame))
    frame = frame.sort_values(["user_id", "time", "order"], kind="stable")
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


def training_counts(split: dict[str, UserSplit]) -> dict[str, int]:
    """Each item's number of training interactions (what a correct Pop scores)."""
    counts: dict[str, int] = {}
    for user in split.values():
        for item in user.train:
            counts[item] = counts.get(item, 0) + 1
    return counts


def popularity_hit_bounds(split: dict[str, UserSplit], k: int = 10) -> tuple[float, float]:
    """(pessimistic, optimistic) test HR@k of ranking by training counts under ``paper``: every
    item but the user's training and validation items is a candidate."""
    catalogue = np.array(sorted({item for user in split.values() for item in user.train + user.valid + user.test}))
    counts = training_counts(split)
    score = np.array([counts.get(item, 0) for item in catalogue])
    pessimistic = optimistic = 0
    for user in split.values():
        keep = ~np.isin(catalogue, user.train + user.valid)
        candidates, positive = score[keep], np.isin(catalogue[keep], user.test)
        kth = np.sort(candidates)[::-1][min(k, len(candidates)) - 1]
        above, tied = candidates > kth, candidates == kth
        free = k - int(above.sum())  # slots left for the tied items
        hit_above = bool((positive & above).any())
        optimistic += hit_above or bool((positive & tied).any())
        pessimistic += hit_above or int(tied.sum() - (positive & tied).sum()) < free
    return pessimistic / len(split), optimistic / len(split)
