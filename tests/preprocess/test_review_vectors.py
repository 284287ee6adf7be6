"""Per-review text vectors: the side-file (hand-checked means, no-text reviews, CLI path from a
prepared dataset through the embedding cache) and ReviewDataset (training reviews only)."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dataset_preprocess.cli import main
from dataset_preprocess.pipeline import build_review_vectors_for_prepared, prepare_dataset
from dataset_preprocess.topics.embedding_cache import EmbeddingCache, SentenceEncoder, sentence_key
from dataset_preprocess.topics.review_vectors import (
    load_review_vectors, review_vector_paths, write_review_vectors,
)
from dataset_preprocess.topics.sentences import split_reviews
from recbole_sdmtmp.data.reviews import ReviewDataset
from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.runner import load_data
from tests.tiny_data import interactions

DIM = 8
MAPPING = "user=user,item=item,rating=rating,time=time,text=text"


def fake_vector(sentence: str) -> np.ndarray:
    """A unit vector fixed by the sentence text (stands in for MiniLM)."""
    seed = int(hashlib.sha1(sentence.encode()).hexdigest()[:8], 16)
    vector = np.random.default_rng(seed).normal(size=DIM)
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def review_text(user: str, item: str) -> str:
    if (user, item) == ("u4", "i12"):
        return ""  # no text at all
    if (user, item) == ("u3", "i9"):
        return "!!! ..."  # punctuation only: no sentence either
    return f"{user} on {item}. Works fine!"


def tiny_reviews(changed_text: dict | None = None) -> pd.DataFrame:
    # day d of the tiny data counted from 2011-04-26 (Unix 1,303,776,000): a plausible review time
    rows = [(u, i, r, 1_303_776_000 + d * 86400, (changed_text or {}).get((u, i), review_text(u, i)))
            for (u, i, r, d) in interactions()]
    return pd.DataFrame(rows, columns=["user", "item", "rating", "time", "text"])


def fill_cache(cache_dir: Path, reviews: pd.DataFrame) -> None:
    """Put a fake vector for every sentence in the cache, so no encoder runs."""
    frame = reviews.rename(columns={"user": "user_id", "item": "item_id", "text": "review_text"})
    sentences = sorted(set(split_reviews(frame)["sentence"]))
    identity = SentenceEncoder("all-MiniLM-L6-v2").identity
    EmbeddingCache(cache_dir, identity).add([sentence_key(s) for s in sentences],
                                             np.stack([fake_vector(s) for s in sentences]))


def prepared_root(tmp_path: Path, changed_text: dict | None = None) -> Path:
    """A dataset 'tiny' prepared from a CSV of tests.tiny_data's interactions, with its review
    vectors built by the command for prepared datasets."""
    root = tmp_path / "dataset"
    reviews = tiny_reviews(changed_text)
    raw = tmp_path / "tiny.csv"
    reviews.to_csv(raw, index=False)
    prepare_dataset("tiny", out_dir=root, raw_file=raw, columns=MAPPING, topics=False)
    fill_cache(tmp_path / "cache", reviews)
    build_review_vectors_for_prepared("tiny", out_dir=root, cache_dir=tmp_path / "cache")
    return root


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return prepared_root(tmp_path_factory.mktemp("reviews"))


def config_for(root: Path, protocol: str = "paper"):
    return build_config("BPR", "tiny", config_dict={
        "data_path": str(root), "protocol": protocol, "show_progress": False,
        "device": "cpu", "use_gpu": False, "checkpoint_dir": str(root / "saved")})


# ----------------------------------------------------------------------------- the side-file

def test_hand_checked_means_and_reviews_without_text(tmp_path):
    reviews = pd.DataFrame({"user_id": ["u1", "u0", "u2"], "item_id": ["iB", "iA", "iA"],
                            "review_text": ["Good. Bad.", "Fine!", ""]})
    sentences = split_reviews(reviews)
    assert sentences["sentence"].tolist() == ["Good.", "Bad.", "Fine!"]
    embeddings = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    meta = write_review_vectors(reviews, sentences, embeddings, tmp_path, "hand", "fake-encoder")
    loaded = load_review_vectors(tmp_path, "hand")
    # sorted by user, item; u2's empty review has no row; the mean is not re-normalised
    assert loaded.index[["user_id", "item_id"]].values.tolist() == [["u0", "iA"], ["u1", "iB"]]
    assert loaded.index["sentences"].tolist() == [1.0, 2.0]
    np.testing.assert_allclose(loaded.vectors, [[0.6, 0.8], [0.5, 0.5]])
    assert loaded.vectors.dtype == np.float32
    assert (meta["n_reviews"], meta["n_reviews_without_text"], meta["n_rows"]) == (3, 1, 2)
    assert meta["renormalized"] is False and meta["encoder"] == "fake-encoder"


def test_prepared_dataset_gets_vectors_from_raw_file_and_cache(root):
    loaded = load_review_vectors(root / "tiny", "tiny")
    assert loaded.vectors.shape == (48, DIM)  # 50 reviews, two without a sentence
    pairs = set(map(tuple, loaded.index[["user_id", "item_id"]].values.tolist()))
    assert ("u4", "i12") not in pairs and ("u3", "i9") not in pairs
    row = loaded.index.index[(loaded.index["user_id"] == "u0") & (loaded.index["item_id"] == "i5")][0]
    expected = (fake_vector("u0 on i5.") + fake_vector("Works fine!")) / 2
    np.testing.assert_allclose(loaded.vectors[row], expected, rtol=1e-6)
    assert json.loads(review_vector_paths(root / "tiny", "tiny")["meta"].read_text())["n_reviews_without_text"] == 2


def test_missing_file_says_how_to_make_it(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="python -m dataset_preprocess tiny --review-vectors"):
        load_review_vectors(tmp_path, "tiny")
    assert main(["NoSuchSet", "--review-vectors", "--out-dir", str(tmp_path)]) == 2
    assert "prepare the dataset first" in capsys.readouterr().err


# ----------------------------------------------------------------------------- ReviewDataset

def tokens(dataset, users, items):
    return [(dataset.id2token(dataset.uid_field, u), dataset.id2token(dataset.iid_field, i))
            for u, i in zip(users, items)]


@pytest.mark.parametrize("protocol", ["paper", "next_item"])
def test_training_split_serves_training_reviews_only(root, protocol):
    dataset, (train, valid, test) = load_data(config_for(root, protocol), ReviewDataset)
    users, items, vectors = train._dataset.review_vectors()
    served = set(tokens(dataset, users, items))
    # 10 interactions per user: 'paper' splits them 7/1/2 (7 training items); 'next_item' splits
    # the 9 cases 7/1/1, and the 7 training cases read 8 items (the first one as history)
    n_train = 7 if protocol == "paper" else 8
    expected = {(u, i) for u in ("u0", "u1", "u2", "u3", "u4")
                for i in [f"i{3 * int(u[1]) + j}" for j in range(n_train)]}
    expected -= {("u4", "i12"), ("u3", "i9")}  # no text
    assert served == expected
    assert vectors.dtype == np.float32 and users.dtype == np.int64 and items.dtype == np.int64
    for (u, i), vector in zip(tokens(dataset, users, items), vectors):
        np.testing.assert_allclose(vector, (fake_vector(f"{u} on {i}.") + fake_vector("Works fine!")) / 2,
                                   rtol=1e-6)
    assert len(dataset.review_vectors()[0]) == 48  # the whole dataset holds every review


def test_item_text_vectors_hand_checked(root):
    dataset, (train, _, _) = load_data(config_for(root), ReviewDataset)
    table = train._dataset.item_text_vectors()
    assert table.shape == (dataset.item_num, DIM) and table.dtype == np.float32
    assert not table[0].any()  # padding item
    ident = dataset.field2token_id[dataset.iid_field]
    # i3 is reviewed in training by u0 (j=3) and u1 (j=0)
    review = {u: (fake_vector(f"{u} on i3.") + fake_vector("Works fine!")) / 2 for u in ("u0", "u1")}
    np.testing.assert_allclose(table[ident["i3"]], (review["u0"] + review["u1"]) / 2, rtol=1e-5)
    # i12 is reviewed in training by u2 (j=6), u3 (j=3) and u4 (j=0, no text): u2's and u3's mean
    review = {u: (fake_vector(f"{u} on i12.") + fake_vector("Works fine!")) / 2 for u in ("u2", "u3")}
    np.testing.assert_allclose(table[ident["i12"]], (review["u2"] + review["u3"]) / 2, rtol=1e-5)
    # i21 is only u4's last (test) interaction: no training review, a zero row
    assert not table[ident["i21"]].any()


@pytest.mark.parametrize("protocol", ["paper", "next_item"])
def test_changing_a_test_review_changes_no_model_input(root, tmp_path, protocol):
    """u0's last interaction (i9) is a test case under both protocols: a new text for it changes
    the file but none of what the training split serves."""
    changed = prepared_root(tmp_path, {("u0", "i9"): "Completely different words here. Awful."})
    before = load_data(config_for(root, protocol), ReviewDataset)
    after = load_data(config_for(changed, protocol), ReviewDataset)
    full_before, full_after = before[0].review_vectors()[2], after[0].review_vectors()[2]
    assert not np.array_equal(full_before, full_after)  # the text did change a vector
    train_before, train_after = before[1][0]._dataset, after[1][0]._dataset
    for got, want in zip(train_after.review_vectors(), train_before.review_vectors()):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(train_after.item_text_vectors(), train_before.item_text_vectors())


def test_run_preparation_writes_missing_review_vectors(tmp_path, monkeypatch):
    """``ensure_prepared`` (the run script, compare) builds the files for a ReviewDataset model
    (RGCL) when a prepared dataset lacks them; SD-MTMP's runs are left alone."""
    from recbole_sdmtmp.config import ensure_prepared
    from recbole_sdmtmp.registry import needs_review_vectors

    monkeypatch.chdir(tmp_path)  # the default embedding cache, cache/embeddings, is relative
    root = prepared_root(tmp_path, {})
    fill_cache(tmp_path / "cache" / "embeddings", tiny_reviews())
    paths = review_vector_paths(root / "tiny", "tiny")
    for path in paths.values():
        path.unlink()
    config = build_config("RGCL", "tiny", config_dict={"data_path": str(root)})
    assert needs_review_vectors(config)
    assert not needs_review_vectors(build_config("SDMTMP", "tiny", config_dict={"data_path": str(root)}))
    ensure_prepared(config)
    assert load_review_vectors(root / "tiny", "tiny").vectors.shape == (48, DIM)


def test_reconversion_makes_review_vectors_stale_and_the_run_rebuilds_them(tmp_path, monkeypatch):
    """A new conversion (here: one review fewer in the raw file, converted with --force) changes
    the .inter digest; the old vectors are refused with the rebuild command, and the run's
    preparation rebuilds them for the new interactions instead of serving the old ones."""
    from recbole_sdmtmp.config import ensure_prepared

    monkeypatch.chdir(tmp_path)
    root = prepared_root(tmp_path, {})
    fill_cache(tmp_path / "cache" / "embeddings", tiny_reviews())
    summary = json.loads((root / "tiny" / "tiny.summary.json").read_text())
    assert load_review_vectors(root / "tiny", "tiny").meta["inter_sha256"] == summary["inter_sha256"]

    fewer = tiny_reviews().iloc[1:]  # drop u0's first review
    fewer.to_csv(tmp_path / "tiny.csv", index=False)
    prepare_dataset("tiny", out_dir=root, raw_file=tmp_path / "tiny.csv", columns=MAPPING,
                    topics=False, force=True)
    new_sha = json.loads((root / "tiny" / "tiny.summary.json").read_text())["inter_sha256"]
    assert new_sha != summary["inter_sha256"]
    with pytest.raises(ValueError, match="stale review vectors.*python -m dataset_preprocess tiny --review-vectors"):
        load_review_vectors(root / "tiny", "tiny")

    ensure_prepared(build_config("RGCL", "tiny", config_dict={"data_path": str(root)}))
    rebuilt = load_review_vectors(root / "tiny", "tiny")
    assert rebuilt.meta["inter_sha256"] == new_sha
    assert rebuilt.vectors.shape == (47, DIM)  # 49 reviews, two without a sentence


def test_run_preparation_rebuilds_topics_older_than_the_conversion(tmp_path, monkeypatch):
    """SD-MTMP's topic side-files written before the last conversion are stale: the run's
    preparation asks for them again (before, it only checked that they existed)."""
    import os

    import dataset_preprocess.pipeline
    from recbole_sdmtmp.config import ensure_prepared
    from dataset_preprocess.topics.files import topic_file_paths

    root = prepared_root(tmp_path, {})
    paths = [p for key, p in topic_file_paths(root / "tiny", "tiny").items() if key != "summary"]
    for path in paths:
        path.write_text("stand-in\n")
    calls = []
    monkeypatch.setattr(dataset_preprocess.pipeline, "prepare_dataset", lambda *a, **k: calls.append(k["topics"]))
    # the age rule alone: the stand-ins' content is checked elsewhere (tests/preprocess/test_checked_data.py)
    monkeypatch.setattr(dataset_preprocess.pipeline.verify, "topic_problem", lambda *args: None)
    config = build_config("SDMTMP", "tiny", config_dict={"data_path": str(root)})
    summary = root / "tiny" / "tiny.summary.json"
    for path in paths:  # topics newer than the conversion: left alone
        os.utime(path, (summary.stat().st_mtime + 10,) * 2)
    ensure_prepared(config)
    assert calls == []
    os.utime(paths[0], (summary.stat().st_mtime - 10,) * 2)  # one side-file from an older conversion
    ensure_prepared(config)
    assert calls == [True]
