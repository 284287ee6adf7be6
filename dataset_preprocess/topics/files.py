"""The topic side-files of a dataset: their format, an atomic writer and the validating reader.

``python -m dataset_preprocess <name>`` (``dataset_preprocess.topics.fit.build_topics``) writes four
files next to the RecBole atomic files of dataset ``<name>``:

``<name>.review_topic``
    Tab-separated, RecBole atomic-file style, header
    ``user_id:token<TAB>item_id:token<TAB>topic_id:token<TAB>sentences:float``. One row per
    (review, topic) pair: ``sentences`` is how many of that review's sentences fall in the topic
    (>= 1). Outlier sentences (BERTopic topic -1) are not listed, so a review, user or item whose
    sentences are all outliers has no row. Rows are sorted by user_id, item_id, topic_id.
``<name>.topic_vec.npy``
    float32 array [k, D]: row g is e(T_g), the mean embedding of topic g's sentences in the
    sentence encoder's space (D = 384 for all-MiniLM-L6-v2; the model projects it to its own d).
``<name>.topics.json``
    Metadata: ``format_version``, ``encoder`` (model identity), ``embedding_dim``,
    ``normalized_embeddings``, ``seed``, ``config`` (every TopicConfig field), ``n_reviews``,
    ``n_reviews_without_text``, ``n_sentences``, ``n_outlier_sentences``, ``outlier_ratio``,
    ``n_topics`` (k), ``timings`` (``embed_s``, ``cluster_s``), ``cache`` (``n_unique_sentences``,
    ``n_encoded``), ``topic_fit`` (``key``: the hash of every input of the fit, ``reused``:
    whether the fit came from the topic-fit cache, :mod:`dataset_preprocess.topics.topic_cache`) and
    ``topics``: one ``{topic_id, size, n_users, n_items, words, words_25}``
    per topic, ``size`` in sentences, ``words`` the top c-TF-IDF words (English stop words
    removed; ``config.top_n_words``, 10), ``words_25`` the top 25 (for topic diversity; absent
    in files written before it was added).
``<name>.topics.tsv``
    The same per-topic summary for people: topic_id, size, n_users, n_items, top_words
    (comma-joined).

Topic ids are 0..k-1, by size descending. Every file is written atomically
(``dataset_preprocess.atomic_io``), topics.json last, so a crash never leaves a truncated side-file.

This module is imported by the model: it must stay free of heavy imports (no bertopic,
sentence-transformers, torch).
"""

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

FORMAT_VERSION = 1
REVIEW_TOPIC_HEADER = ("user_id:token", "item_id:token", "topic_id:token", "sentences:float")
REVIEW_TOPIC_SUFFIX = ".review_topic"
TOPIC_VEC_SUFFIX = ".topic_vec.npy"
META_SUFFIX = ".topics.json"
SUMMARY_SUFFIX = ".topics.tsv"


@dataclass
class TopicFiles:
    """The validated content of a dataset's topic side-files."""

    review_topic: pd.DataFrame  # user_id str, item_id str, topic_id int64, sentences float64
    topic_vectors: np.ndarray  # float32 [k, D]
    meta: dict

    @property
    def n_topics(self) -> int:
        return int(self.topic_vectors.shape[0])


def topic_file_paths(data_dir: Path, name: str) -> dict[str, Path]:
    """The four side-file paths of dataset ``name`` in ``data_dir``."""
    data_dir = Path(data_dir)
    return {
        "review_topic": data_dir / f"{name}{REVIEW_TOPIC_SUFFIX}",
        "topic_vec": data_dir / f"{name}{TOPIC_VEC_SUFFIX}",
        "meta": data_dir / f"{name}{META_SUFFIX}",
        "summary": data_dir / f"{name}{SUMMARY_SUFFIX}",
    }


def topic_fit_id(data_dir: Path, name: str) -> str | None:
    """A short hash of what a topic fit handed the model (``review_topic`` and ``topic_vec.npy``),
    or None before the dataset has topics. Two machines can fit the same reviews differently
    (float kernels differ by instruction set, docs/PREPROCESSING.md), so a result that read the
    topics records this id and is compared only with results on the same fit."""
    paths = topic_file_paths(data_dir, name)
    digest = hashlib.sha256()
    for key in ("review_topic", "topic_vec"):
        if not paths[key].is_file():
            return None
        digest.update(paths[key].read_bytes())
    return digest.hexdigest()[:12]


def load_topic_files(data_dir: Path, name: str) -> TopicFiles:
    """Read and check the side-files the model needs; errors say which file and how to make it."""
    paths = topic_file_paths(data_dir, name)
    for key in ("review_topic", "topic_vec", "meta"):
        if not paths[key].is_file():
            raise FileNotFoundError(
                f"topic side-file {paths[key]} is missing; make the topic files of dataset "
                f"{name!r} with: python -m dataset_preprocess {name}"
            )
    meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{paths['meta']}: format_version {meta.get('format_version')!r}, expected "
            f"{FORMAT_VERSION}; rebuild with: python -m dataset_preprocess {name}"
        )
    vectors = np.load(paths["topic_vec"], allow_pickle=False)
    expected_shape = (meta["n_topics"], meta["embedding_dim"])
    if vectors.dtype != np.float32 or vectors.shape != expected_shape:
        raise ValueError(
            f"{paths['topic_vec']}: {vectors.dtype} {vectors.shape}, but {paths['meta'].name} "
            f"says float32 {expected_shape}"
        )
    review_topic = _read_review_topic(paths["review_topic"], n_topics=expected_shape[0])
    return TopicFiles(review_topic=review_topic, topic_vectors=vectors, meta=meta)


def _read_review_topic(path: Path, n_topics: int) -> pd.DataFrame:
    frame = pd.read_csv(
        path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE, engine="c"
    )
    if tuple(frame.columns) != REVIEW_TOPIC_HEADER:
        raise ValueError(
            f"{path}: header {list(frame.columns)}, expected {list(REVIEW_TOPIC_HEADER)}"
        )
    frame.columns = [column.split(":")[0] for column in REVIEW_TOPIC_HEADER]
    frame["topic_id"] = frame["topic_id"].astype(np.int64)
    frame["sentences"] = frame["sentences"].astype(np.float64)
    bad = frame[(frame["topic_id"] < 0) | (frame["topic_id"] >= n_topics)]
    if len(bad):
        raise ValueError(
            f"{path}: {len(bad)} rows with topic_id outside [0, {n_topics}), "
            f"e.g. {bad.iloc[0].to_dict()}"
        )
    if (frame["sentences"] < 1).any():
        raise ValueError(f"{path}: every row must count at least one sentence")
    return frame
