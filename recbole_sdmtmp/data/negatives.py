"""Training negatives: which items may be one (paper section 2.3) and how a batch holds them.

RecBole's pairwise loader repeats each case once per negative inside a ``train_batch_size``-row
batch and returns the negatives flat ([B*k]), so with k negatives an epoch has k times the
batches, and a model that propagates the whole graph per batch pays k full propagations for the
same cases (docs/DESIGN.md §6). ``CaseNegativesDataLoader`` keeps a batch at ``train_batch_size``
*cases* and gives each case its k negatives as one [B, k] field; a model asks for it with the
class attribute ``NEGATIVES_PER_CASE = True`` (SD-MTMP does). Every other model keeps RecBole's
own layout.
"""

import numpy as np
import torch
from recbole.data.dataloader import TrainDataLoader
from recbole.data.interaction import Interaction

NEGATIVE_EXCLUSIONS = ("interacted", "target")


class TrainingItemSampler:
    """Negative items a user never interacted with in training (paper section 2.3).

    RecBole's sequential sampler excludes only the target (``exclude='target'``, kept to measure
    the difference). Rejection sampling against the sorted (user, item) keys of the training
    interactions; uniform or popularity-weighted candidates.
    """

    def __init__(self, n_items: int, user_items: dict, distribution="uniform", popularity=None,
                 exclude: str = "interacted"):
        if exclude not in NEGATIVE_EXCLUSIONS:
            raise ValueError(f"train_neg_exclude={exclude!r} is not valid; choose 'interacted' or 'target'")
        self.exclude = exclude
        self.n_items = n_items
        keys = [np.asarray(items, dtype=np.int64) + int(user) * n_items for user, items in user_items.items()]
        self.keys = np.unique(np.concatenate(keys)) if keys else np.array([], dtype=np.int64)
        self.max_used = max((len(set(items)) for items in user_items.values()), default=0)
        if self.max_used >= n_items - 1:
            raise ValueError("a user interacted with every item: no negative can be sampled")
        self.distribution = distribution
        if distribution == "popularity":
            weights = np.asarray(popularity, dtype=np.float64)[1:] + 1e-12
            self.cumulative = np.cumsum(weights / weights.sum())
        elif distribution != "uniform":
            raise ValueError(f"negative distribution {distribution!r}: use 'uniform' or 'popularity'")

    def _draw(self, size: int) -> np.ndarray:
        if self.distribution == "uniform":
            return np.random.randint(1, self.n_items, size)
        return 1 + np.minimum(np.searchsorted(self.cumulative, np.random.rand(size)), self.n_items - 2)

    def _used(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        keys = users.astype(np.int64) * self.n_items + items
        positions = np.minimum(np.searchsorted(self.keys, keys), max(len(self.keys) - 1, 0))
        return self.keys[positions] == keys if len(self.keys) else np.zeros(len(keys), bool)

    def sample_by_user_ids(self, user_ids, item_ids, num: int) -> torch.Tensor:
        """RecBole's layout: sample r for user i sits at position r * len(user_ids) + i."""
        users = np.tile(np.asarray(user_ids, dtype=np.int64), num)
        targets = np.tile(np.asarray(item_ids, dtype=np.int64), num)

        def rejected(index):
            if self.exclude == "target":
                return items[index] == targets[index]
            return self._used(users[index], items[index])

        items = self._draw(len(users))
        todo = np.flatnonzero(rejected(np.arange(len(users))))
        while len(todo):
            items[todo] = self._draw(len(todo))
            todo = todo[rejected(todo)]
        return torch.from_numpy(items)



class CaseNegativesDataLoader(TrainDataLoader):
    """``train_batch_size`` cases per batch, each with its k negatives in a [B, k] field.

    The user keeps RecBole's ``train_neg_sample_args: {distribution, sample_num: k}``; the
    negatives are drawn by the same sampler (``TrainingItemSampler``) in the same order as
    RecBole's layout (draw r of case i at r * B + i), so with k = 1 the batches equal RecBole's.
    """

    def __init__(self, config, dataset, sampler, shuffle=False):
        neg_args = config["train_neg_sample_args"] or {}
        if neg_args.get("dynamic", False):
            raise ValueError("negatives per case: dynamic (hard) negative sampling is not supported")
        if dataset.item_feat is not None:
            raise ValueError("negatives per case: item features would need [B, k] rows; the "
                             "datasets of this project have none")
        super().__init__(config, dataset, sampler, shuffle=shuffle)

    def _init_batch_size_and_step(self):
        self.step = self.config["train_batch_size"]  # cases, whatever k is
        self.set_batch_size(self.step)

    def _neg_sample_by_pair_wise_sampling(self, inter_feat, neg_item_ids):
        cases = len(inter_feat)
        negatives = neg_item_ids.view(self.neg_sample_num, cases).T.contiguous()  # [k, B] -> [B, k]
        inter_feat.update(Interaction({self.neg_item_id: negatives}))
        return inter_feat
