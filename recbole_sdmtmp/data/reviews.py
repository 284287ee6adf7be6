"""A RecBole dataset that also serves one text vector per review (RGCL, MISSRec, RRPU baselines).

The vectors come from ``<name>.review_vec.*`` (``dataset_preprocess.topics.review_vectors``: the mean of
a review's L2-normalised MiniLM sentence embeddings, not re-normalised; reviews without text
have no vector). As with ``SDMTMPDataset.topic_incidence``, only the reviews of the interactions
this dataset object holds are served: the runner builds every model on the training split's
dataset, so no validation or test review reaches a model. There is no ``leaky_all`` switch here.

A subclass of ``SDMTMPDataset`` (a ``SequentialDataset``): the runner feeds general and
sequential models alike through the sequential pipeline under both protocols, and the training
split's ``inter_matrix`` holds every training interaction, each user's first one included.
"""

from functools import cached_property
from pathlib import Path

import numpy as np

from dataset_preprocess.topics.review_vectors import ReviewVectors, load_review_vectors
from recbole_sdmtmp.data.dataset import SDMTMPDataset


class ReviewDataset(SDMTMPDataset):
    """SDMTMPDataset + per-review text vectors restricted to this dataset's interactions."""

    @cached_property
    def review_files(self) -> ReviewVectors:
        return load_review_vectors(Path(self.dataset_path), self.dataset_name)

    @property
    def review_dim(self) -> int:
        """D, the sentence encoder's dimension (384 for all-MiniLM-L6-v2)."""
        return int(self.review_files.vectors.shape[1])

    def review_vectors(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(user ids int64 [n], item ids int64 [n], vectors float32 [n, D]) in RecBole ids: the
        reviews with text of the (user, item) interactions this dataset holds, in file order."""
        files = self.review_files
        users = self._token_ids(self.uid_field, files.index["user_id"])
        items = self._token_ids(self.iid_field, files.index["item_id"])
        held = (users >= 0) & (items >= 0)
        interactions = self.inter_matrix(form="csr").astype(bool)
        held[held] = np.asarray(interactions[users[held], items[held]]).ravel()
        rows = np.flatnonzero(held)
        return users[rows], items[rows], files.vectors[rows]

    def item_text_vectors(self) -> np.ndarray:
        """float32 [item_num, D]: each item's mean review vector over this dataset's reviews;
        a zero row for an item without one (the padding item, items never reviewed here)."""
        _, items, vectors = self.review_vectors()
        sums = np.zeros((self.item_num, self.review_dim), dtype=np.float64)
        np.add.at(sums, items, vectors)
        counts = np.bincount(items, minlength=self.item_num)
        return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
