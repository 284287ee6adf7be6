"""Review topics with BERTopic (SD-MTMP paper section 1, docs/DESIGN.md §2).

reviews -> sentences -> sentence embeddings (cached) -> UMAP -> HDBSCAN -> topics, written as
the side-files documented in ``dataset_preprocess.topics.files``. The fit (UMAP + HDBSCAN + topic
words) is cached too, keyed by every input that determines it (``dataset_preprocess.topics.topic_cache``),
so preparing a dataset again with nothing changed skips it. The outlier cluster (-1) is not a
topic; topics are renumbered 0..k-1 by size descending (ties by BERTopic's id). Topic vectors
are the means of their sentences' embeddings in the encoder's space, so the model can sweep its
embedding size d without recomputing topics.

Too little text is an error, not an empty result: ``build_topics`` raises ``ValueError`` (and
writes nothing) when there are fewer than ``minimum_sentences(config)`` sentences, or when
HDBSCAN puts every sentence in the outlier cluster. A model with zero topics would silently be
a plain rating model.
"""

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dataset_preprocess.atomic_io import atomic_write, atomic_write_text
from dataset_preprocess.topics.embedding_cache import SentenceEncoder, embed_sentences
from dataset_preprocess.topics.sentences import split_reviews
from dataset_preprocess.topics.topic_cache import TopicFitCache, fit_inputs, fit_key
from dataset_preprocess.topics.warmup import UmapWarmup
from dataset_preprocess.topics.files import FORMAT_VERSION, REVIEW_TOPIC_HEADER, topic_file_paths

logger = logging.getLogger(__name__)

# Topic diversity (Dieng et al. 2020, as BERTopic users measure it) reads each topic's top 25
# words, so that many are kept per topic in topics.json ("words_25") besides "words".
DIVERSITY_N_WORDS = 25


@dataclass
class TopicConfig:
    """BERTopic settings; the defaults are those measured in docs/DESIGN.md §2 and, for speed,
    docs/PREPROCESSING.md §4-5: the fastest encoder that passed the encoder gate (none of the
    int8 ones did: fp32, the vectors of every committed result bit for bit), in length-planned
    batches and worker processes; ``openvino-int8`` is about 3x faster with other topics."""

    encoder: str = "all-MiniLM-L6-v2"  # the bundled copy; any sentence-transformers name or path
    # "fastest": the fastest option that passed the encoder gate (dataset_preprocess.topics.
    # quantized; a pinned fit is still installed under it); "fp32"; "bf16" (autocast); "auto":
    # bf16 where the hardware has bf16 units, else fp32; "onnx-int8", "openvino-int8".
    encoder_precision: str = "fastest"
    seed: int = 2024
    umap_n_neighbors: int = 15
    umap_n_components: int = 5
    min_cluster_size: int = 30
    min_samples: int = 10
    top_n_words: int = 10
    umap_sample: int = 0  # fit UMAP on this many sentences, place the rest (0: all)
    pca_components: int = 0  # PCA to this many dimensions before UMAP (0: none)
    umap_n_epochs: int = 0  # UMAP's optimisation epochs (0: UMAP's default, 200 above 10k points)
    batch_size: int = 16  # rows per batch when batch_tokens is 0 (16 pads least)
    # About this many tokens per batch, rows chosen by sentence length; 0: batch_size rows.
    batch_tokens: int = 768
    # Encoder processes on the CPU; 0: one per core when there is enough to encode.
    encoder_processes: int = 0
    cache_dir: str = "cache/embeddings"
    # Fitted topics by input hash (dataset_preprocess.topics.topic_cache); None: "topics" beside
    # cache_dir (cache/topics), "": no cache.
    topic_cache_dir: str | None = None
    show_progress: bool = True


def sentence_encoder(config: TopicConfig) -> SentenceEncoder:
    """The encoder ``config`` asks for, ``auto`` precision resolved for this machine."""
    from dataset_preprocess.topics.embedding_cache import resolve_precision

    import torch

    precision = resolve_precision(config.encoder_precision,
                                  "cuda" if torch.cuda.is_available() else "cpu")
    return SentenceEncoder(config.encoder, batch_size=config.batch_size, precision=precision,
                           batch_tokens=config.batch_tokens, processes=config.encoder_processes)


def cluster_settings(config: TopicConfig) -> dict:
    """Every setting of the fit, as :func:`_cluster` passes it on (and the topic-fit cache key
    hashes it): change one here and a cached fit is no longer reused."""
    return {
        "umap": {
            "n_neighbors": config.umap_n_neighbors,
            "n_components": config.umap_n_components,
            "min_dist": 0.0,
            "metric": "cosine",
            "random_state": config.seed,
            "n_jobs": 1,  # what random_state implies anyway; said here to silence UMAP's warning
            # Only when set, so that the keys of fits cached before this option stay valid.
            **({"n_epochs": config.umap_n_epochs} if config.umap_n_epochs else {}),
        },
        "umap_sample": config.umap_sample,
        "pca_components": config.pca_components,
        "hdbscan": {
            "min_cluster_size": config.min_cluster_size,
            "min_samples": config.min_samples,
            "metric": "euclidean",
            "cluster_selection_method": "eom",
            "prediction_data": False,
        },
        "vectorizer": {"stop_words": "english"},
        "top_n_words": config.top_n_words,
        "bertopic_top_n_words": max(config.top_n_words, DIVERSITY_N_WORDS),
    }


def minimum_sentences(config: TopicConfig) -> int:
    """Fewest sentences worth clustering: UMAP needs more points than neighbours, and HDBSCAN
    (no single-cluster result) needs room for two clusters of ``min_cluster_size``."""
    return max(2 * config.min_cluster_size, config.umap_n_neighbors + 1)


def build_topics(
    reviews: pd.DataFrame, out_dir: Path, name: str, config: TopicConfig | None = None,
    fitted_on: str | None = None,
) -> dict:
    """Cluster the review sentences into topics and write ``<name>.*`` side-files to ``out_dir``.

    ``reviews`` has columns user_id, item_id, rating, timestamp, review_text (may be "").
    ``fitted_on``: what ``reviews`` were chosen as (e.g. the training reviews of a protocol,
    :mod:`dataset_preprocess.topics.training_fit`); the record then lists the (user, item) pairs
    read, so an audit can check them. Returns the content of ``<name>.topics.json``.
    """
    config = config or TopicConfig()
    sentences = split_reviews(reviews)
    n_sentences = len(sentences)
    minimum = minimum_sentences(config)
    if n_sentences < minimum:
        raise ValueError(
            f"{name}: {n_sentences} review sentences, but topic modelling needs at least {minimum} "
            f"(max(2 * min_cluster_size={config.min_cluster_size}, "
            f"umap_n_neighbors={config.umap_n_neighbors} + 1))"
        )
    texts = sentences["sentence"].tolist()

    warmup = UmapWarmup(cluster_settings(config), n_sentences)  # compiles while encoding
    encoder = sentence_encoder(config)
    start = time.perf_counter()
    try:
        embeddings, cache_stats = embed_sentences(
            texts, encoder, Path(config.cache_dir), show_progress=config.show_progress,
            before_encoding=warmup.before_encoding,
        )
    finally:
        encoder.close()  # the worker processes, if any
    embed_s = time.perf_counter() - start
    logger.info(
        "%s: embedded %d sentences in %.1f s (%d encoded, %.0f encoded sentences/s)",
        name, n_sentences, embed_s, cache_stats["n_encoded"],
        cache_stats["n_encoded"] / embed_s if embed_s > 0 else 0.0,
    )

    start = time.perf_counter()
    fit_cache = None
    if config.topic_cache_dir != "":
        fit_cache = TopicFitCache(config.topic_cache_dir or Path(config.cache_dir).parent / "topics")
    inputs = fit_inputs(texts, embeddings, encoder.identity, cluster_settings(config))
    key = fit_key(inputs)
    cached = fit_cache.load(key, n_sentences) if fit_cache else None
    warmup.join()
    if cached is None:
        labels, words, words_25 = _cluster(texts, embeddings, config)
        if fit_cache:
            fit_cache.store(key, inputs, labels, words, words_25)
    else:
        labels, words, words_25 = cached
        logger.info("%s: topics reused from %s (key %s)", name, fit_cache.directory, key[:12])
    cluster_s = time.perf_counter() - start
    n_topics = len(words)
    n_outliers = int((labels < 0).sum())
    logger.info(
        "%s: %d topics, %d/%d outlier sentences, clustering %.1f s",
        name, n_topics, n_outliers, n_sentences, cluster_s,
    )
    if n_topics == 0:
        raise ValueError(
            f"{name}: HDBSCAN found no topic in {n_sentences} sentences (all outliers); "
            f"lower min_cluster_size ({config.min_cluster_size}) or min_samples "
            f"({config.min_samples})"
        )

    sentences["topic_id"] = labels
    assigned = sentences[labels >= 0]
    topic_vectors = _topic_vectors(embeddings, labels, n_topics)
    review_topic = (
        assigned.groupby(["review", "user_id", "item_id", "topic_id"], sort=False)
        .size()
        .rename("sentences")
        .reset_index()
        .sort_values(["user_id", "item_id", "topic_id"], kind="stable")
    )
    per_topic = assigned.groupby("topic_id").agg(
        size=("sentence", "size"), n_users=("user_id", "nunique"), n_items=("item_id", "nunique")
    )
    topics = [
        {
            "topic_id": topic,
            "size": int(per_topic.at[topic, "size"]),
            "n_users": int(per_topic.at[topic, "n_users"]),
            "n_items": int(per_topic.at[topic, "n_items"]),
            "words": words[topic],
            "words_25": words_25[topic],
        }
        for topic in range(n_topics)
    ]
    n_with_text = int(sentences["review"].nunique())
    summary = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "encoder": encoder.identity,
        "encoder_settings": {"precision": encoder.precision, "batch_tokens": encoder.batch_tokens,
                             "batch_size": encoder.batch_size},
        "embedding_dim": int(topic_vectors.shape[1]),
        "normalized_embeddings": True,
        "seed": config.seed,
        "config": dataclasses.asdict(config),
        "n_reviews": len(reviews),
        "n_reviews_without_text": len(reviews) - n_with_text,
        "n_sentences": n_sentences,
        "n_outlier_sentences": n_outliers,
        "outlier_ratio": n_outliers / n_sentences,
        "n_topics": n_topics,
        "timings": {"embed_s": round(embed_s, 3), "cluster_s": round(cluster_s, 3)},
        "cache": cache_stats,
        "topic_fit": {"key": key, "reused": cached is not None},
        "topics": topics,
    }
    if fitted_on is not None:
        summary.update(fitted_on_record(reviews, fitted_on))
    _write_side_files(Path(out_dir), name, review_topic, topic_vectors, summary)
    return summary


def fitted_on_record(reviews: pd.DataFrame, scope: str) -> dict:
    """What a fit of a chosen set of ``reviews`` records of them: the scope they were chosen as,
    their (user, item) pairs (one ``user<TAB>item`` string each) and the pairs' digest."""
    pairs = sorted(zip(reviews["user_id"].astype(str), reviews["item_id"].astype(str)))
    return {"fitted_on_scope": scope, "fitted_on_sha256": pairs_digest(pairs),
            "fitted_on": [f"{user}\t{item}" for user, item in pairs]}


def pairs_digest(pairs) -> str:
    """sha256 of a set of (user, item) token pairs, in sorted order: what a fit was fitted on."""
    digest = hashlib.sha256()
    for user, item in sorted(pairs):
        digest.update(f"{user}\t{item}\n".encode("utf-8"))
    return digest.hexdigest()


def _cluster(
    texts: list[str], embeddings: np.ndarray, config: TopicConfig
) -> tuple[np.ndarray, list[list[str]], list[list[str]]]:
    """BERTopic on precomputed embeddings: labels renumbered 0..k-1 (-1 outlier), the top
    ``config.top_n_words`` words and the top :data:`DIVERSITY_N_WORDS` words of each topic."""
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from sklearn.feature_extraction.text import CountVectorizer
    from threadpoolctl import threadpool_limits
    from umap import UMAP

    from dataset_preprocess.topics.reduction import SampledUMAP

    settings = cluster_settings(config)
    if settings["umap_sample"] or settings["pca_components"]:
        reducer = SampledUMAP(settings["umap"], settings["umap_sample"],
                              settings["pca_components"], seed=config.seed)
    else:
        reducer = UMAP(**settings["umap"])
    model = BERTopic(
        umap_model=reducer,
        hdbscan_model=HDBSCAN(**settings["hdbscan"]),
        vectorizer_model=CountVectorizer(**settings["vectorizer"]),
        top_n_words=settings["bertopic_top_n_words"],
        calculate_probabilities=False,
        verbose=config.show_progress,
    )
    # One BLAS thread: UMAP's spectral start and PCA then sum in the same order on any number of
    # cores (UMAP's own numba code is single-threaded under random_state).
    with threadpool_limits(limits=1):
        raw = np.asarray(model.fit_transform(texts, embeddings=embeddings)[0], dtype=np.int64)
    ids, sizes = np.unique(raw[raw >= 0], return_counts=True)
    order = sorted(range(len(ids)), key=lambda j: (-sizes[j], ids[j]))
    old_ids = [int(ids[j]) for j in order]
    mapping = {old: new for new, old in enumerate(old_ids)}
    labels = np.array([mapping.get(int(t), -1) for t in raw], dtype=np.int64)
    ranked = [[word for word, _ in (model.get_topic(old) or []) if word] for old in old_ids]
    words = [topic[: config.top_n_words] for topic in ranked]
    words_25 = [topic[:DIVERSITY_N_WORDS] for topic in ranked]
    return labels, words, words_25


def _topic_vectors(embeddings: np.ndarray, labels: np.ndarray, n_topics: int) -> np.ndarray:
    """e(T_g): the mean embedding of topic g's sentences, float32 [k, D]."""
    member = labels >= 0
    sums = np.zeros((n_topics, embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, labels[member], embeddings[member])
    counts = np.bincount(labels[member], minlength=n_topics)
    return (sums / counts[:, None]).astype(np.float32)


def _write_side_files(
    out_dir: Path,
    name: str,
    review_topic: pd.DataFrame,
    topic_vectors: np.ndarray,
    summary: dict,
) -> None:
    """Write the four files atomically; topics.json last, as it describes the others."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = topic_file_paths(out_dir, name)
    with atomic_write(paths["topic_vec"], "wb") as handle:
        np.save(handle, topic_vectors, allow_pickle=False)

    lines = ["\t".join(REVIEW_TOPIC_HEADER)]
    lines += [
        f"{user}\t{item}\t{topic}\t{float(count)}"
        for user, item, topic, count in review_topic[
            ["user_id", "item_id", "topic_id", "sentences"]
        ].itertuples(index=False)
    ]
    _write_text(paths["review_topic"], lines)

    rows = ["topic_id\tsize\tn_users\tn_items\ttop_words"]
    rows += [
        f"{t['topic_id']}\t{t['size']}\t{t['n_users']}\t{t['n_items']}\t{','.join(t['words'])}"
        for t in summary["topics"]
    ]
    _write_text(paths["summary"], rows)
    # what the fit wrote, so that a side-file changed or cut short later is noticed
    # (dataset_preprocess.verify)
    summary["side_files"] = {key: hashlib.sha256(paths[key].read_bytes()).hexdigest()
                             for key in ("review_topic", "topic_vec")}
    _write_text(paths["meta"], [json.dumps(summary, indent=2, ensure_ascii=False)])


def _write_text(path: Path, lines: list[str]) -> None:
    atomic_write_text(path, "\n".join(lines) + "\n")
