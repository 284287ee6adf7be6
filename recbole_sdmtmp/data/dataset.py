"""The RecBole dataset of SD-MTMP: a SequentialDataset that also serves the review topics.

Topics come from the side-files of ``python -m dataset_preprocess`` (see
``dataset_preprocess/topics/files.py``). The hypergraph incidence is built from the reviews of the
interactions this dataset holds: called on the training split (as the model does), no review of
a validation or test interaction reaches the model (docs/DESIGN.md §2). ``topic_reviews: leaky_all``
restores the paper's variant, which builds the hypergraphs from every review.
"""

from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from recbole.data.dataset import Dataset, SequentialDataset

from dataset_preprocess.topics.files import TopicFiles, load_topic_files

TOPIC_REVIEW_MODES = ("train", "leaky_all")


class SDMTMPDataset(SequentialDataset):
    """SequentialDataset + topic vectors and user/item-topic incidence matrices."""

    def __init__(self, config):
        self.topic_reviews = config["topic_reviews"] or "train"
        if self.topic_reviews not in TOPIC_REVIEW_MODES:
            raise ValueError(
                f"topic_reviews={self.topic_reviews!r} is not valid; choose 'train' (hypergraphs "
                "from training reviews only) or 'leaky_all' (the paper's variant: every review, "
                "which leaks validation and test reviews into the model)"
            )
        super().__init__(config)

    def inter_matrix(self, form="coo", value_field=None):
        """RecBole's SequentialDataset adds the first item of each one-item history (the one
        interaction no sequential case targets); rows that already hold every training
        interaction (``training_cases: per_user``) need nothing added."""
        if getattr(self, "holds_every_interaction", False):
            return Dataset.inter_matrix(self, form, value_field)
        return super().inter_matrix(form, value_field)

    @cached_property
    def topic_files(self) -> TopicFiles:
        return load_topic_files(Path(self.dataset_path), self.dataset_name)

    @property
    def topic_vectors(self) -> np.ndarray:
        """e(T_g) in the sentence encoder's space: float32 [k, D]."""
        return self.topic_files.topic_vectors

    def topic_incidence(self, side: str, sentences: bool = False) -> sp.csr_matrix:
        """Binary incidence (user_num x k for 'user', item_num x k for 'item') of section 2.1.2.

        A user (item) is linked to topic g when one of its reviews has a sentence in topic g,
        counting only the reviews of this dataset's interactions unless ``leaky_all``. With
        ``sentences`` each entry is instead the number of those review sentences in the topic
        (what ``recbole_sdmtmp.explain`` shows).
        """
        if side not in ("user", "item"):
            raise ValueError(f"side must be 'user' or 'item', got {side!r}")
        reviews = self.topic_files.review_topic
        known = self.linked_review_rows()
        users = self._token_ids(self.uid_field, reviews["user_id"])
        items = self._token_ids(self.iid_field, reviews["item_id"])
        topics = reviews["topic_id"].to_numpy(dtype=np.int64)
        counts = reviews["sentences"].to_numpy(dtype=np.float32)
        rows = users[known] if side == "user" else items[known]
        n_rows = self.user_num if side == "user" else self.item_num
        n_topics = self.topic_vectors.shape[0]
        incidence = sp.csr_matrix((counts[known], (rows, topics[known])), shape=(n_rows, n_topics))
        if not sentences:
            incidence.data[:] = 1.0  # duplicates summed by csr construction: back to binary
        return incidence

    def linked_review_rows(self) -> np.ndarray:
        """bool [rows of review_topic]: the (review, topic) rows that link a user and an item of
        this dataset to a topic: the reviews of its interactions only, unless ``leaky_all``
        (what ``recbole_sdmtmp.leak_audit`` checks)."""
        reviews = self.topic_files.review_topic
        users = self._token_ids(self.uid_field, reviews["user_id"])
        items = self._token_ids(self.iid_field, reviews["item_id"])
        known = (users >= 0) & (items >= 0)
        if self.topic_reviews == "train":
            interactions = self.inter_matrix(form="csr").astype(bool)
            known[known] = np.asarray(interactions[users[known], items[known]]).ravel()
        return known

    def _token_ids(self, field: str, tokens) -> np.ndarray:
        """RecBole ids of raw tokens; -1 for tokens the dataset does not hold (filtered out)."""
        mapping = self.field2token_id[field]
        return np.fromiter((mapping.get(token, -1) for token in tokens), dtype=np.int64)
