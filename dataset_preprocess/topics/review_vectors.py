"""Per-review text vectors: the review side-file of the review-aware baselines (RGCL, MISSRec, RRPU).

A review's vector is the mean of its sentences' embeddings (the same sentences, encoder and
embedding cache as the topics: ``dataset_preprocess.topics.sentences``, ``dataset_preprocess.topics.embedding_cache``).
Sentence embeddings are L2-normalised; their mean is **not re-normalised**: its norm (<= 1) says how
much the sentences agree, and a consumer that wants unit vectors normalises in one line, while the
opposite cannot be undone. Three files next to the atomic files of dataset ``<name>``:

``<name>.review_vec.npy``
    float32 [n, D] (D = 384 for all-MiniLM-L6-v2): row i is the vector of index row i.
``<name>.review_vec.tsv``
    Header ``user_id:token<TAB>item_id:token<TAB>sentences:float``; one row per review *with
    text*, sorted by user_id, item_id; ``sentences`` (>= 1) is how many sentences were averaged.
    A review without text (empty, or only punctuation) has no sentence and **no row**: a consumer
    treats a missing (user, item) pair as "no text" (RGCL: a zero edge feature).
``<name>.review_vec.json``
    ``format_version``, ``encoder``, ``embedding_dim``, ``normalized_sentences`` (true),
    ``renormalized`` (false), ``n_reviews``, ``n_reviews_without_text``, ``n_rows``, and
    ``inter_sha256``: the ``.inter`` file the vectors were built for, as ``<name>.summary.json``
    records it. A later conversion (``--force``, another ``--kcore``) changes that digest, and the
    files are then stale: ``load_review_vectors`` refuses them (a review added by the new
    conversion would otherwise silently read as "no text") and the run script rebuilds them.

The pipeline (``python -m dataset_preprocess NAME``) writes them after the topics. For a dataset
prepared before this file existed, ``python -m dataset_preprocess NAME --review-vectors`` re-reads
the raw file named in ``<name>.summary.json`` with the recorded options (no re-clustering; the
sentence embeddings come from the cache). Files are written atomically, the json last.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dataset_preprocess.atomic_io import atomic_write, atomic_write_text

if TYPE_CHECKING:
    from dataset_preprocess.topics.embedding_cache import SentenceEncoder

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
INDEX_HEADER = ("user_id:token", "item_id:token", "sentences:float")
VECTOR_SUFFIX = ".review_vec.npy"
INDEX_SUFFIX = ".review_vec.tsv"
META_SUFFIX = ".review_vec.json"


@dataclass
class ReviewVectors:
    """The validated content of a dataset's review-vector files."""

    index: pd.DataFrame  # user_id str, item_id str, sentences float64; row i <-> vectors[i]
    vectors: np.ndarray  # float32 [n, D]
    meta: dict


def review_vector_paths(data_dir: Path, name: str) -> dict[str, Path]:
    data_dir = Path(data_dir)
    return {
        "vectors": data_dir / f"{name}{VECTOR_SUFFIX}",
        "index": data_dir / f"{name}{INDEX_SUFFIX}",
        "meta": data_dir / f"{name}{META_SUFFIX}",
    }


def mean_review_vectors(
    review_pos: np.ndarray, embeddings: np.ndarray, n_reviews: int
) -> tuple[np.ndarray, np.ndarray]:
    """(vectors float32 [n_reviews, D], sentence counts [n_reviews]): the plain mean of each
    review's sentence embeddings; a review without sentences gets a zero row and count 0."""
    sums = np.zeros((n_reviews, embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, review_pos, embeddings)
    counts = np.bincount(review_pos, minlength=n_reviews)
    vectors = sums / np.maximum(counts, 1)[:, None]
    return vectors.astype(np.float32), counts


def write_review_vectors(
    reviews: pd.DataFrame,
    sentences: pd.DataFrame,
    embeddings: np.ndarray,
    out_dir: Path,
    name: str,
    encoder_identity: str,
    inter_sha256: str | None = None,
) -> dict:
    """Write the three files from already embedded sentences; returns the json content.

    ``reviews``: user_id, item_id (one row per review); ``sentences``: ``split_reviews(reviews)``
    (its ``review`` column is a row position in ``reviews``); ``embeddings`` [len(sentences), D];
    ``inter_sha256``: the summary's digest of the ``.inter`` file these reviews are (None outside
    a prepared dataset).
    """
    vectors, counts = mean_review_vectors(
        sentences["review"].to_numpy(dtype=np.int64), embeddings, len(reviews)
    )
    index = pd.DataFrame(
        {
            "user_id": reviews["user_id"].astype(str).to_numpy(),
            "item_id": reviews["item_id"].astype(str).to_numpy(),
            "sentences": counts.astype(np.float64),
        }
    )
    keep = counts > 0
    index, vectors = index[keep], vectors[keep]
    order = np.lexsort((index["item_id"].to_numpy(), index["user_id"].to_numpy()))
    index, vectors = index.iloc[order].reset_index(drop=True), vectors[order]
    if index.duplicated(["user_id", "item_id"]).any():
        raise ValueError(f"{name}: a (user, item) pair has two reviews; the index needs one")

    meta = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "encoder": encoder_identity,
        "embedding_dim": int(embeddings.shape[1]),
        "normalized_sentences": True,
        "renormalized": False,
        "n_reviews": len(reviews),
        "n_reviews_without_text": int((~keep).sum()),
        "n_rows": len(index),
        "inter_sha256": inter_sha256,
    }
    paths = review_vector_paths(out_dir, name)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with atomic_write(paths["vectors"], "wb") as handle:
        np.save(handle, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    lines = ["\t".join(INDEX_HEADER)]
    lines += [f"{u}\t{i}\t{float(s)}" for u, i, s in index.itertuples(index=False)]
    atomic_write_text(paths["index"], "\n".join(lines) + "\n")
    atomic_write_text(paths["meta"], json.dumps(meta, indent=2) + "\n")
    logger.info("%s: %d review vectors (%d reviews without text) -> %s",
                name, len(index), meta["n_reviews_without_text"], paths["vectors"])
    return meta


def build_review_vectors(
    reviews: pd.DataFrame,
    out_dir: Path,
    name: str,
    encoder: str = "all-MiniLM-L6-v2",
    cache_dir: str | Path = "cache/embeddings",
    batch_size: int = 64,
    show_progress: bool = False,
    inter_sha256: str | None = None,
    sentence_encoder: SentenceEncoder | None = None,
) -> dict:
    """Split, embed (cache first, the encoder only for missing sentences) and write the files.

    ``sentence_encoder``: the topics' encoder (its precision and batch plan), so that the vectors
    are the topics' own, from the cache; default: ``encoder`` in fp32 batches of ``batch_size``.
    """
    from dataset_preprocess.topics.embedding_cache import SentenceEncoder, embed_sentences
    from dataset_preprocess.topics.sentences import split_reviews

    sentences = split_reviews(reviews)
    sentence_encoder = sentence_encoder or SentenceEncoder(encoder, batch_size=batch_size)
    embeddings, stats = embed_sentences(
        sentences["sentence"].tolist(), sentence_encoder, Path(cache_dir), show_progress=show_progress
    )
    if len(sentences) == 0:
        embeddings = np.zeros((0, 0), dtype=np.float32)
    logger.info("%s: %d sentences, %d newly encoded", name, len(sentences), stats["n_encoded"])
    return write_review_vectors(reviews, sentences, embeddings, out_dir, name, sentence_encoder.identity,
                                inter_sha256)


def recorded_inter_sha256(data_dir: Path, name: str) -> str | None:
    """The ``.inter`` digest in ``<name>.summary.json``; None without a readable summary."""
    from dataset_preprocess.readers.amazon import summary_path

    try:
        return json.loads(summary_path(Path(data_dir), name).read_text(encoding="utf-8")).get("inter_sha256")
    except (OSError, ValueError):
        return None


def stale_reason(data_dir: Path, name: str, meta: dict) -> str | None:
    """Why the review vectors with json content ``meta`` do not belong to the dataset's current
    conversion, or None. Files from before ``inter_sha256`` was recorded are judged by age: stale
    when older than the summary, as the topics are."""
    from dataset_preprocess.readers.amazon import side_files_current

    current = recorded_inter_sha256(data_dir, name)
    if current is None:
        return None
    built_for = meta.get("inter_sha256")
    if built_for is not None:
        return None if built_for == current else (
            f"built for .inter sha256 {built_for[:12]}..., but {name}.summary.json now records "
            f"{current[:12]}... (the dataset was converted again)")
    if not side_files_current([review_vector_paths(data_dir, name)["meta"]], data_dir, name):
        return "older than the dataset's last conversion (its summary.json)"
    return None


def review_vectors_current(data_dir: Path, name: str) -> bool:
    """True when the three files exist and belong to the dataset's current conversion."""
    paths = review_vector_paths(data_dir, name)
    if not all(path.is_file() for path in paths.values()):
        return False
    try:
        meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
    except ValueError:
        return False
    return stale_reason(data_dir, name, meta) is None


def load_review_vectors(data_dir: Path, name: str) -> ReviewVectors:
    """Read and check the files; errors say which file and how to make it."""
    paths = review_vector_paths(data_dir, name)
    for path in paths.values():
        if not path.is_file():
            raise FileNotFoundError(
                f"review-vector file {path} is missing; make it with: "
                f"python -m dataset_preprocess {name} --review-vectors"
            )
    meta = json.loads(paths["meta"].read_text(encoding="utf-8"))
    stale = stale_reason(data_dir, name, meta)
    if stale:
        raise ValueError(f"{paths['meta']}: stale review vectors, {stale}; rebuild with "
                         f"python -m dataset_preprocess {name} --review-vectors")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{paths['meta']}: format_version {meta.get('format_version')!r}, expected "
                         f"{FORMAT_VERSION}; rebuild with python -m dataset_preprocess {name} --review-vectors")
    vectors = np.load(paths["vectors"], allow_pickle=False)
    index = pd.read_csv(paths["index"], sep="\t", dtype=str, keep_default_na=False,
                        quoting=csv.QUOTE_NONE, engine="c")
    if tuple(index.columns) != INDEX_HEADER:
        raise ValueError(f"{paths['index']}: header {list(index.columns)}, expected {list(INDEX_HEADER)}")
    index.columns = [column.split(":")[0] for column in INDEX_HEADER]
    index["sentences"] = index["sentences"].astype(np.float64)
    expected = (meta["n_rows"], meta["embedding_dim"])
    if vectors.dtype != np.float32 or vectors.shape != expected or len(index) != expected[0]:
        raise ValueError(f"{paths['vectors']}: {vectors.dtype} {vectors.shape} with {len(index)} index "
                         f"rows, but {paths['meta'].name} says float32 {expected}")
    return ReviewVectors(index=index, vectors=vectors, meta=meta)
