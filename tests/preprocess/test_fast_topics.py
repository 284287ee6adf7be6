"""The fast topic path: length-planned batches, bf16 where the hardware has it, worker
processes, UMAP compiled while the encoder runs, and review vectors from the topics' own encoder.

The real bundled MiniLM encodes real Instrument sentences; ``benchmarks/preprocess_fast.py``
measures the speed and the gate (docs/PREPROCESSING.md).
"""

import json
import logging

import numpy as np
import pytest

import dataset_preprocess.topics.embedding_cache as embedding_cache
from dataset_preprocess.topics.embedding_cache import (
    MAX_BATCH_ROWS, SentenceEncoder, fixed_shape_batches, plan_batches, resolve_precision,
    rows_per_batch,
)
from dataset_preprocess.topics.fit import TopicConfig, _cluster, cluster_settings, sentence_encoder
from dataset_preprocess.topics.sentences import split_reviews
from dataset_preprocess.topics.warmup import UmapWarmup
from tests.preprocess.test_reproducibility import CharTokenizer


def test_rows_per_batch_by_hand():
    assert rows_per_batch(7, batch_size=16, batch_tokens=0) == 16  # the exact path: fixed rows
    assert rows_per_batch(24, batch_size=16, batch_tokens=768) == 32
    assert rows_per_batch(1, batch_size=16, batch_tokens=768) == MAX_BATCH_ROWS
    assert rows_per_batch(1000, batch_size=16, batch_tokens=768) == 1


def test_plan_batches_by_hand():
    lengths = [2, 3, 2, 3, 2, 3, 2]
    # 6 tokens per batch: 2 rows of length 3, 3 rows of length 2; longest first, input order.
    assert plan_batches(lengths, batch_size=16, batch_tokens=6) == [[1, 3], [5], [0, 2, 4], [6]]
    assert plan_batches(lengths, batch_size=2) == [[1, 3], [5], [0, 2], [4, 6]]


def test_fixed_shape_batches_fill_to_the_planned_rows():
    texts = ["ab", "cde", "fg", "hij", "kl"]
    batches = list(fixed_shape_batches(texts, CharTokenizer(), max_length=3, batch_size=16,
                                       batch_tokens=6))
    assert batches == [([1, 3], ["cde", "hij"]), ([0, 2, 4], ["ab", "fg", "kl"])]


@pytest.fixture(scope="module")
def sentences(instrument_reviews):
    return list(dict.fromkeys(split_reviews(instrument_reviews.head(12))["sentence"]))


def test_fp32_vectors_are_those_of_sentence_transformers_encode(sentences):
    """The default: one tokenization, length-planned batches of about 768 tokens and the model's
    own forward give, bit for bit, what ``SentenceTransformer.encode`` gives on fixed-shape
    batches of 16 (the code of every committed result); so do batches of 16 on the new path."""
    encoder = SentenceEncoder("all-MiniLM-L6-v2", device="cpu", precision="fp32", batch_tokens=768)
    vectors = encoder.encode(sentences)
    model = encoder._model
    expected = np.zeros_like(vectors)
    for rows, batch in fixed_shape_batches(sentences, model.tokenizer, model.max_seq_length, 16):
        expected[rows] = model.encode(batch, batch_size=len(batch), convert_to_numpy=True,
                                      normalize_embeddings=True, show_progress_bar=False)[:len(rows)]
    assert np.array_equal(vectors, expected)
    sixteen = SentenceEncoder("all-MiniLM-L6-v2", device="cpu", precision="fp32", batch_tokens=0)
    assert np.array_equal(sixteen.encode(sentences), expected)
    assert encoder.identity == sixteen.identity + "+t768"


def test_bf16_vectors_are_close_and_do_not_depend_on_their_batch(sentences):
    fast = SentenceEncoder("all-MiniLM-L6-v2", device="cpu", precision="bf16", batch_tokens=768)
    exact = SentenceEncoder("all-MiniLM-L6-v2", device="cpu", precision="fp32")
    together = fast.encode(sentences)
    cosine = (together * exact.encode(sentences)).sum(axis=1)
    assert cosine.min() > 0.999 and cosine.max() < 1 + 1e-6
    assert not np.array_equal(cosine, np.ones_like(cosine))  # really another precision
    half = sorted(np.random.default_rng(0).choice(len(sentences), len(sentences) // 2,
                                                  replace=False))
    assert np.array_equal(fast.encode([sentences[i] for i in half]), together[half])
    assert np.array_equal(fast.encode(sentences[::-1]), together[::-1])
    assert fast.identity.endswith("+bf16+t768")


def test_worker_processes_give_the_vectors_of_one_process(sentences):
    single = SentenceEncoder("all-MiniLM-L6-v2", device="cpu", precision="bf16", batch_tokens=768)
    pooled = SentenceEncoder("all-MiniLM-L6-v2", device="cpu", precision="bf16", batch_tokens=768,
                             processes=2)
    try:
        vectors = pooled.encode(sentences)
    finally:
        pooled.close()
    assert np.array_equal(vectors, single.encode(sentences))


def test_auto_precision_follows_the_hardware(monkeypatch, caplog):
    monkeypatch.setattr(embedding_cache, "bf16_support", lambda device: (False, "no bf16 units"))
    with caplog.at_level(logging.INFO):
        assert resolve_precision("auto") == "fp32"
    assert "auto -> fp32: no bf16 units" in caplog.text
    assert resolve_precision("bf16") == "bf16"  # asked for explicitly: kept
    monkeypatch.setattr(embedding_cache, "bf16_support", lambda device: (True, "bf16 units"))
    assert resolve_precision("auto") == "bf16"
    assert sentence_encoder(TopicConfig(encoder_precision="auto")).precision == "bf16"
    exact = sentence_encoder(TopicConfig(encoder_precision="fp32"))  # one flag away
    assert (exact.precision, exact.batch_tokens, exact.processes) == ("fp32", 768, 0)
    earlier = sentence_encoder(TopicConfig(batch_tokens=0))
    assert (earlier.batch_tokens, earlier.batch_size) == (0, 16)


def test_umap_epochs_enter_the_fit_settings_only_when_set():
    assert "n_epochs" not in cluster_settings(TopicConfig())["umap"]  # old fit keys stay valid
    assert cluster_settings(TopicConfig(umap_n_epochs=100))["umap"]["n_epochs"] == 100


def test_a_fit_after_the_warmup_is_the_fit_without_it(instrument_reviews):
    """The warm-up's own UMAP fit leaves nothing behind that changes the next fit."""
    texts = split_reviews(instrument_reviews.head(60))["sentence"].tolist()
    embeddings = SentenceEncoder("all-MiniLM-L6-v2", device="cpu").encode(texts)
    config = TopicConfig(min_cluster_size=10, min_samples=5, show_progress=False)
    before = _cluster(texts, embeddings, config)[0]
    warmup = UmapWarmup(cluster_settings(config), len(texts))
    warmup.before_encoding(len(texts))
    warmup.join()
    assert warmup.error is None and warmup.seconds is not None
    after = _cluster(texts, embeddings, config)[0]
    assert np.array_equal(before, after)
    assert len(set(before.tolist()) - {-1}) >= 2


def test_no_warmup_without_anything_to_encode():
    warmup = UmapWarmup(cluster_settings(TopicConfig()), 10_000)
    warmup.before_encoding(0)  # everything cached: the fit is usually cached too
    assert warmup.thread is None
    sampled = UmapWarmup(cluster_settings(TopicConfig(umap_sample=500)), 10_000)
    sampled.before_encoding(10_000)  # other functions: not warmed
    assert sampled.thread is None


def test_review_vectors_come_from_the_topics_encoder(instrument_reviews, tmp_path):
    """The review vectors read the topics' bf16 vectors from the cache (they once re-encoded
    every sentence in fp32, under another identity, when the topics were made in bf16)."""
    from dataset_preprocess.pipeline import _build_topics

    cache = tmp_path / "embeddings"
    config = TopicConfig(min_cluster_size=10, min_samples=5, show_progress=False,
                         encoder_precision="bf16", cache_dir=str(cache), topic_cache_dir="")
    _build_topics(instrument_reviews.head(40), tmp_path, "Instrument", config)
    topics = json.loads((tmp_path / "Instrument.topics.json").read_text())
    vectors = json.loads((tmp_path / "Instrument.review_vec.json").read_text())
    assert vectors["encoder"] == topics["encoder"] and topics["encoder"].endswith("+bf16+t768")
    assert topics["encoder_settings"] == {"precision": "bf16", "batch_tokens": 768, "batch_size": 16}
    assert len([d for d in cache.iterdir() if d.is_dir()]) == 1  # one identity: nothing re-encoded
