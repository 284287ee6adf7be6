"""A cache of fitted topics, so that preparing a dataset whose inputs have not changed skips
UMAP + HDBSCAN (about 75 s on Instrument with 2 loaded cores; docs/PREPROCESSING.md).

A fit is keyed by the sha256 of everything that determines it:

- the sentences, in order and with repeats (BERTopic clusters every sentence, so order and
  duplicates change UMAP's input), and their embedding vectors bit for bit (this covers the
  encoder, its backend and anything that changed its numbers: a cache filled in other batches);
- every clustering setting, as passed to UMAP, PCA, HDBSCAN, the CountVectorizer and BERTopic
  (:func:`dataset_preprocess.topics.fit.cluster_settings`), the seed among them;
- the versions of the libraries that compute the fit (umap-learn, pynndescent, hdbscan,
  bertopic, scikit-learn, numba, numpy), and :data:`FIT_FORMAT`.

One entry is ``<cache_dir>/<key>.npz`` holding the renumbered sentence labels (int64, -1 for an
outlier) and ``<key>.json`` holding the topic words and the key's inputs, for people. Both are
written atomically, the json last; an entry whose files do not agree with each other is ignored
(and recomputed).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dataset_preprocess.atomic_io import atomic_write, atomic_write_text

logger = logging.getLogger(__name__)

FIT_FORMAT = 1  # raise when a change to topics._cluster changes what a fit returns
LIBRARIES = ("umap-learn", "pynndescent", "hdbscan", "bertopic", "scikit-learn", "numba", "numpy")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries whose code computes the fit."""
    versions = {}
    for package in LIBRARIES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "absent"
    return versions


def texts_digest(texts: Sequence[str]) -> str:
    """sha256 of the sentences in order, each length-prefixed (no two lists share a digest)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8", errors="surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def embeddings_digest(embeddings: np.ndarray) -> str:
    """sha256 of the float32 embedding matrix's shape and bytes."""
    array = np.ascontiguousarray(embeddings, dtype=np.float32)
    digest = hashlib.sha256(repr(array.shape).encode("ascii"))
    digest.update(array.tobytes())
    return digest.hexdigest()


def fit_inputs(texts: Sequence[str], embeddings: np.ndarray, encoder: str,
               settings: dict) -> dict:
    """What the key hashes, as a JSON-able dict (also stored beside the entry)."""
    return {
        "fit_format": FIT_FORMAT,
        "encoder": encoder,
        "n_sentences": len(texts),
        "texts_sha256": texts_digest(texts),
        "embeddings_sha256": embeddings_digest(embeddings),
        "settings": settings,
        "libraries": library_versions(),
    }


def fit_key(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode("utf-8")).hexdigest()


class TopicFitCache:
    """Fitted topics (sentence labels and topic words) under ``directory``, one entry per key."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.directory / f"{key}.npz", self.directory / f"{key}.json"

    def load(self, key: str, n_sentences: int
             ) -> tuple[np.ndarray, list[list[str]], list[list[str]]] | None:
        """``(labels, words, words_25)`` of a stored fit, or None (absent or damaged)."""
        labels_path, meta_path = self._paths(key)
        if not meta_path.is_file():
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            with np.load(labels_path, allow_pickle=False) as data:
                labels = data["labels"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            logger.warning("ignoring damaged topic-fit cache entry %s: %s", meta_path, err)
            return None
        words, words_25 = meta.get("words"), meta.get("words_25")
        n_topics = len(words) if isinstance(words, list) else -1
        if (
            meta.get("key") != key
            or labels.dtype != np.int64
            or labels.shape != (n_sentences,)
            or not isinstance(words_25, list)
            or len(words_25) != n_topics
            or (labels.size and (labels.min() < -1 or labels.max() >= n_topics))
        ):
            logger.warning("ignoring inconsistent topic-fit cache entry %s", meta_path)
            return None
        return labels, words, words_25

    def store(self, key: str, inputs: dict, labels: np.ndarray, words: list[list[str]],
              words_25: list[list[str]]) -> Path:
        """Write one entry atomically (labels first, the json that vouches for them last)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        labels_path, meta_path = self._paths(key)
        with atomic_write(labels_path, "wb") as handle:
            np.savez(handle, labels=np.asarray(labels, dtype=np.int64))
        meta = {"key": key, "inputs": inputs, "n_topics": len(words), "words": words,
                "words_25": words_25}
        atomic_write_text(meta_path, json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
        return meta_path
