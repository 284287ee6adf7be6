"""The exact HR@K of a random ranking of the same test cases: a floor every trained model must
clear (1 - C(c - p, K) / C(c, K) for a case with c candidate items and p positives)."""

import math

import numpy as np


def random_hit_rate(test_loader, k: int) -> float:
    n_items = test_loader._dataset.item_num - 1  # without the padding id 0
    rates = []
    for excluded, positives in zip(test_loader.excluded, test_loader.positives):
        candidates, hits = n_items - len(set(excluded.tolist())), len(set(positives.tolist()))
        rates.append(1 - math.comb(candidates - hits, k) / math.comb(candidates, k))
    return float(np.mean(rates))
