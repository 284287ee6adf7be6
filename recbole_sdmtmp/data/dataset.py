"""The RecBole dataset of SD-MTMP: a SequentialDataset that also serves the review topics.

Topics (paper section 1) are fitted on the reviews of the interactions this dataset holds
(``topic_fit: train``): read on the training split, as the model does, the clusters, the topic
vectors and the user/item-topic links see no review of a validation or test interaction
(docs/DESIGN.md §2). The fit is made once per training split and cached in
``<dataset>/fits/<protocol>-<digest of the training pairs>/``
(:mod:`dataset_preprocess.topics.training_fit`; a pinned fit of the same training interactions
is installed instead of fitting). ``topic_fit: prepared`` reads the
side-files ``python -m dataset_preprocess`` wrote beside the atomic files instead, fitted on every
review (the paper's procedure), and ``topic_reviews: leaky_all`` reads that fit and links users and
items to topics through every review too; both leak held-out reviews, so the protocols refuse them unless the run
names the leak (:func:`recbole_sdmtmp.data.protocol.reading_settings`).
"""

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from recbole.data.dataset import Dataset, SequentialDataset

from dataset_preprocess.topics.files import TopicFiles, load_topic_files, topic_fit_id
from dataset_preprocess.topics.training_fit import ensure_training_fit

TOPIC_REVIEW_MODES = ("train", "leaky_all")
TOPIC_FITS = ("train", "prepared")


def uses_prepared_fit(topic_fit: str | None, topic_reviews: str | None) -> bool:
    """Whether a run reads the dataset folder's fit: asked for (``topic_fit: prepared``), or with
    links through every review (``topic_reviews: leaky_all``, the paper's section 1 as printed,
    whose topics are fitted on every review too)."""
    return (topic_fit or "train") == "prepared" or (topic_reviews or "train") == "leaky_all"


def prepared_fit_reads_held_out(folder: Path, name: str) -> bool:
    """Whether the fit in the dataset folder says it read every review of the file (what the
    preparation writes); a fit whose record names the pairs it read, or does not say (one made by
    hand), is taken as it is."""
    meta = Path(folder) / f"{name}.topics.json"
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return "fitted_on" not in record and "n_reviews" in record


class SDMTMPDataset(SequentialDataset):
    """SequentialDataset + topic vectors and user/item-topic incidence matrices."""

    def __init__(self, config):
        self.topic_reviews = config["topic_reviews"] or "train"
        self.topic_fit = config["topic_fit"] or "train"
        if self.topic_reviews not in TOPIC_REVIEW_MODES:
            raise ValueError(
                f"topic_reviews={self.topic_reviews!r} is not valid; choose 'train' (hypergraphs "
                "from training reviews only) or 'leaky_all' (the paper's variant: every review, "
                "which leaks validation and test reviews into the model)"
            )
        if self.topic_fit not in TOPIC_FITS:
            raise ValueError(f"topic_fit={self.topic_fit!r} is not valid; choose 'train' (topics fitted on the "
                             "training reviews of the protocol) or 'prepared' (the dataset folder's side-files)")
        self.topic_scope = config["protocol"] or "next_item"
        self.pinned_topic_fits = config["pinned_topic_fits"]
        self._topic_files = {}  # shared by the splits' shallow copies: one load per fit
        super().__init__(config)

    def inter_matrix(self, form="coo", value_field=None):
        """RecBole's SequentialDataset adds the first item of each one-item history (the one
        interaction no sequential case targets); rows that already hold every training
        interaction (``training_cases: per_user``) need nothing added."""
        if getattr(self, "holds_every_interaction", False):
            return Dataset.inter_matrix(self, form, value_field)
        return super().inter_matrix(form, value_field)

    def topic_fit_folder(self) -> Path:
        """The folder of the fit this dataset's topics come from: under ``topic_fit: train``, the
        fit of exactly the reviews of this dataset's interactions (made or installed on first use)."""
        if uses_prepared_fit(self.topic_fit, self.topic_reviews):
            return Path(self.dataset_path)
        pairs = self.interaction_pairs()
        return ensure_training_fit(Path(self.dataset_path), self.dataset_name, pairs, self.topic_scope,
                                   self.pinned_topic_fits)

    def interaction_pairs(self) -> set:
        """The (user, item) raw tokens of the interactions whose reviews the training fit reads:
        every training interaction of the split the protocol made (``training_pairs``, set on the
        dataset and every split made from it), else this dataset's own interactions (a split made
        by RecBole's own ``data_preparation``: the training split's)."""
        if getattr(self, "training_pairs", None) is not None:
            return set(self.training_pairs)
        users, items = self.inter_matrix(form="coo").nonzero()
        user_tokens, item_tokens = self.field2id_token[self.uid_field], self.field2id_token[self.iid_field]
        return set(zip(user_tokens[users].tolist(), item_tokens[items].tolist()))

    def topic_fit_id(self) -> str | None:
        """The id of the fit this dataset reads (``dataset_preprocess.topics.files.topic_fit_id``)."""
        return topic_fit_id(self.topic_fit_folder(), self.dataset_name)

    @property
    def topic_files(self) -> TopicFiles:
        folder = self.topic_fit_folder()
        if folder not in self._topic_files:
            self._topic_files[folder] = load_topic_files(folder, self.dataset_name)
        return self._topic_files[folder]

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
        this dataset to a topic: the reviews the fit read (:meth:`interaction_pairs`, the training
        interactions) only, unless ``leaky_all`` (what ``recbole_sdmtmp.leak_audit`` checks)."""
        reviews = self.topic_files.review_topic
        users = self._token_ids(self.uid_field, reviews["user_id"])
        items = self._token_ids(self.iid_field, reviews["item_id"])
        known = (users >= 0) & (items >= 0)
        if self.topic_reviews == "train":
            pairs = self.interaction_pairs()
            known &= np.fromiter((pair in pairs for pair in zip(reviews["user_id"], reviews["item_id"])),
                                 dtype=bool, count=len(reviews))
        return known

    def _token_ids(self, field: str, tokens) -> np.ndarray:
        """RecBole ids of raw tokens; -1 for tokens the dataset does not hold (filtered out)."""
        mapping = self.field2token_id[field]
        return np.fromiter((mapping.get(token, -1) for token in tokens), dtype=np.int64)
