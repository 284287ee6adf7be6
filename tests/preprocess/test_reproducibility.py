"""Same seed, same numbers: the topic-fit cache key, the warm path that reuses a fit,
and two cold runs in separate processes giving identical topics and test metrics.

The real bundled MiniLM runs on a small slice of the real Instrument reviews (about 120
sentences), so the file stays within a minute on the shared machine.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dataset_preprocess.topics.fit as topics_module
from dataset_preprocess.topics.embedding_cache import SentenceEncoder, fixed_shape_batches
from dataset_preprocess.topics.sentences import split_reviews
from dataset_preprocess.topics.topic_cache import (
    TopicFitCache, embeddings_digest, fit_inputs, fit_key, texts_digest,
)
from dataset_preprocess.topics.fit import TopicConfig, build_topics, cluster_settings
from dataset_preprocess.topics.files import topic_file_paths

REPO_ROOT = Path(__file__).resolve().parents[2]
SLICE_REVIEWS = 40
SETTINGS = dict(min_cluster_size=10, min_samples=5, show_progress=False)


def side_file_digests(out_dir: Path) -> dict[str, str]:
    """sha256 of the files the model reads (topics.json also holds timings, so not that one)."""
    paths = topic_file_paths(out_dir, "Instrument")
    return {key: hashlib.sha256(paths[key].read_bytes()).hexdigest()
            for key in ("review_topic", "topic_vec", "summary")}


# ---------------------------------------------------------------- the key


def test_texts_digest_by_hand():
    # each sentence: its UTF-8 length as 8 little-endian bytes, then the bytes
    expected = hashlib.sha256(b"\x02" + b"\x00" * 7 + b"ab" + b"\x03" + b"\x00" * 7 + b"\xc3\xa9c")
    assert texts_digest(["ab", "éc"]) == expected.hexdigest()
    assert texts_digest(["a", "bc"]) != texts_digest(["ab", "c"])  # no joining ambiguity


def test_fit_key_changes_with_every_input_of_the_fit():
    texts = ["the strings buzz", "great tuner", "great tuner"]
    embeddings = np.eye(3, 4, dtype=np.float32)
    base_config = TopicConfig(**SETTINGS)

    def key(texts=texts, embeddings=embeddings, encoder="enc", config=base_config):
        return fit_key(fit_inputs(texts, embeddings, encoder, cluster_settings(config)))

    base = key()
    assert base == hashlib.sha256(json.dumps(
        fit_inputs(texts, embeddings, "enc", cluster_settings(base_config)), sort_keys=True
    ).encode()).hexdigest()
    changed = {
        "order": key(texts=texts[::-1]),
        "duplicate dropped": key(texts=texts[:2], embeddings=embeddings[:2]),
        "encoder": key(encoder="other"),
    }
    moved = embeddings.copy()
    moved[0, 0] = np.nextafter(moved[0, 0], np.float32(0))  # one rounding step in one number
    changed["one ulp"] = key(embeddings=moved)
    for field, value in [("seed", 7), ("umap_n_neighbors", 10), ("umap_n_components", 3),
                         ("min_cluster_size", 11), ("min_samples", 4), ("top_n_words", 5),
                         ("umap_sample", 100), ("pca_components", 2)]:
        changed[field] = key(config=TopicConfig(**{**SETTINGS, field: value}))
    assert all(value != base for value in changed.values()), changed
    assert len(set(changed.values())) == len(changed)
    # settings that do not reach the fit leave the key alone
    same = TopicConfig(**SETTINGS, batch_size=8, cache_dir="elsewhere", topic_cache_dir="x")
    assert key(config=same) == base
    assert embeddings_digest(embeddings) != embeddings_digest(embeddings.reshape(4, 3))


# ---------------------------------------------------------------- the encoder's batches


class CharTokenizer:
    """One token per character."""

    def __call__(self, texts, truncation, max_length):
        return {"input_ids": [list(text)[:max_length] for text in texts]}


def test_fixed_shape_batches_by_hand():
    texts = ["ab", "cde", "fg", "hij", "kl", "mnop"]  # token lengths 2 3 2 3 2 3 (4 cut to 3)
    batches = list(fixed_shape_batches(texts, CharTokenizer(), max_length=3, batch_size=2))
    assert batches == [([1, 3], ["cde", "hij"]), ([5], ["mnop", "mnop"]),
                       ([0, 2], ["ab", "fg"]), ([4], ["kl", "kl"])]


def test_a_sentences_vector_does_not_depend_on_its_batch(instrument_reviews):
    texts = list(dict.fromkeys(split_reviews(instrument_reviews.head(10))["sentence"]))
    encoder = SentenceEncoder("all-MiniLM-L6-v2", batch_size=4, device="cpu")
    together = encoder.encode(texts)
    rng = np.random.default_rng(0)
    half = sorted(rng.choice(len(texts), size=len(texts) // 2, replace=False))
    assert np.array_equal(encoder.encode([texts[i] for i in half]), together[half])
    assert np.array_equal(encoder.encode(texts[::-1]), together[::-1])


# ---------------------------------------------------------------- the warm path


@pytest.fixture(scope="module")
def small_reviews(instrument_reviews):
    return instrument_reviews.head(SLICE_REVIEWS).reset_index(drop=True)


def test_warm_path_reuses_the_fit(small_reviews, embedding_cache_dir, tmp_path, monkeypatch):
    fits = []
    original = topics_module._cluster

    def counting_cluster(texts, embeddings, config):
        fits.append(config.seed)
        return original(texts, embeddings, config)

    monkeypatch.setattr(topics_module, "_cluster", counting_cluster)
    topic_cache = tmp_path / "topics"
    config = TopicConfig(**SETTINGS, cache_dir=str(embedding_cache_dir),
                         topic_cache_dir=str(topic_cache))
    cold = build_topics(small_reviews, tmp_path / "cold", "Instrument", config)
    assert fits == [2024] and cold["topic_fit"]["reused"] is False
    entry = topic_cache / f"{cold['topic_fit']['key']}.json"
    assert entry.is_file() and (topic_cache / f"{cold['topic_fit']['key']}.npz").is_file()

    warm = build_topics(small_reviews, tmp_path / "warm", "Instrument", config)
    assert fits == [2024] and warm["topic_fit"] == {"key": cold["topic_fit"]["key"],
                                                   "reused": True}
    assert side_file_digests(tmp_path / "warm") == side_file_digests(tmp_path / "cold")
    assert warm["topics"] == cold["topics"]

    # another seed is another fit, stored beside the first
    reseeded = build_topics(small_reviews, tmp_path / "seed", "Instrument",
                            TopicConfig(**{**config.__dict__, "seed": 7}))
    assert fits == [2024, 7] and reseeded["topic_fit"]["key"] != cold["topic_fit"]["key"]
    assert len(list(topic_cache.glob("*.json"))) == 2

    # a damaged entry is not trusted: the fit is made again, with the same result
    (topic_cache / f"{cold['topic_fit']['key']}.npz").write_bytes(b"PK\x03\x04 half")
    again = build_topics(small_reviews, tmp_path / "again", "Instrument", config)
    assert fits == [2024, 7, 2024] and again["topic_fit"]["reused"] is False
    assert side_file_digests(tmp_path / "again") == side_file_digests(tmp_path / "cold")
    assert TopicFitCache(topic_cache).load(cold["topic_fit"]["key"], cold["n_sentences"])


def test_cache_entry_for_other_sentences_is_ignored(tmp_path):
    cache = TopicFitCache(tmp_path)
    cache.store("k", {}, np.array([0, 1, -1]), [["a"], ["b"]], [["a"], ["b"]])
    assert cache.load("k", 3)[0].tolist() == [0, 1, -1]
    assert cache.load("k", 4) is None  # labels for 3 sentences, 4 asked for
    cache.store("bad", {}, np.array([0, 2]), [["a"], ["b"]], [["a"], ["b"]])
    assert cache.load("bad", 2) is None  # label 2 with only 2 topics


# ---------------------------------------------------------------- two cold runs


def cold_run(root: str) -> None:
    """One cold run in a fresh process: convert, embed (empty cache), fit, train, test; prints
    the side-file digests, the topic count and the test metrics as json."""
    from dataset_preprocess.readers.amazon import read_reviews
    from dataset_preprocess.pipeline import prepare_dataset
    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.runner import run
    from tests.conftest import INSTRUMENT_RAW

    root = Path(root)
    dataset_dir = prepare_dataset("Instrument", out_dir=root / "data", raw_file=INSTRUMENT_RAW,
                                  download=False, topics=False)
    reviews = read_reviews(INSTRUMENT_RAW)[0].head(SLICE_REVIEWS)
    config = TopicConfig(**SETTINGS, cache_dir=str(root / "embeddings"),
                         topic_cache_dir=str(root / "topics"))
    summary = build_topics(reviews, dataset_dir, "Instrument", config)
    result = run(build_config("SDMTMP", "Instrument", config_dict={
        "data_path": str(root / "data"), "checkpoint_dir": str(root / "saved"),
        "embedding_size": 16, "epochs": 1, "show_progress": False, "device": "cpu",
        "use_gpu": False, "seed": 2024}))
    print(json.dumps({"digests": side_file_digests(dataset_dir), "n_topics": summary["n_topics"],
                      "n_encoded": summary["cache"]["n_encoded"],
                      "test_result": result.test_result}))


def test_two_cold_runs_give_identical_topics_and_metrics(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONHASHSEED", None)  # each process its own string hashing
    runs = []
    for name in ("a", "b"):
        code = f"from tests.preprocess.test_reproducibility import cold_run; cold_run({str(tmp_path / name)!r})"
        runs.append(subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for process in runs:
        out, err = process.communicate(timeout=1800)  # minutes when idle; far more on a shared CPU
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    first, second = results
    assert first["n_topics"] >= 2 and first["n_encoded"] > 100  # both really encoded and fitted
    assert first == second
