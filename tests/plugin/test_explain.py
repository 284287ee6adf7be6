"""python -m recbole_sdmtmp.explain: the model's own top 10 for a user, and the topics shared by
the user's and the item's training reviews, checked against an independent computation."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dataset_preprocess.pipeline import prepare_dataset
from recbole_sdmtmp import explain as explain_module
from recbole_sdmtmp.data.protocol import split_counts
from recbole_sdmtmp.explain import explain, format_explanation, load_model, topic_sentence_counts
from tests.preprocess.test_own_file import MAPPING, shop_rows, write_csv


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """TinyShop (36 users, 30 items, three review themes) with real topics, and an SD-MTMP
    checkpoint trained on it for 2 epochs."""
    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.runner import run

    root = tmp_path_factory.mktemp("explain")
    raw = write_csv(root / "shop.csv", shop_rows())
    from dataset_preprocess.topics.fit import TopicConfig

    prepare_dataset("TinyShop", out_dir=root / "dataset", raw_file=raw, columns=MAPPING,
                    topic_config=TopicConfig(cache_dir=str(root / "cache"), show_progress=False,
                                             min_cluster_size=10, min_samples=5))  # the training split's 288 sentences
    argv = sys.argv
    sys.argv = argv[:1]
    try:
        result = run(build_config("SDMTMP", "TinyShop", config_dict={
            "data_path": str(root / "dataset"), "checkpoint_dir": str(root / "saved"),
            "embedding_size": 16, "epochs": 2, "stopping_step": 100, "show_progress": False,
            "device": "cpu", "use_gpu": False}), evaluate_test=False)
    finally:
        sys.argv = argv
    return root, result.checkpoint


def test_shared_topics_match_an_independent_join(trained: tuple[Path, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    root, checkpoint = trained
    monkeypatch.chdir(root)
    e = explain(checkpoint, "cust07", "TinyShop", k=10, shown_topics=1000)
    _, _, train, _, _ = load_model(checkpoint, "TinyShop")
    # independent: each user's first 70% of interactions by time (the paper protocol's
    # training part, RecBole's rounding), joined with the review-topic side-file
    inter = pd.read_csv(root / "dataset/TinyShop/TinyShop.inter", sep="\t", dtype=str)
    inter["t"] = inter["timestamp:float"].astype(float)
    parts = []
    for _, rows in inter.sort_values(["user_id:token", "t"], kind="stable").groupby(
            "user_id:token"):
        parts.append(rows.head(split_counts(len(rows), [0.7, 0.1, 0.2])[0]))
    pairs = pd.concat(parts).rename(columns={"user_id:token": "user_id",
                                             "item_id:token": "item_id"})
    links = train.topic_files.review_topic.merge(pairs[["user_id", "item_id"]],
                                                 on=["user_id", "item_id"])
    user_topics = set(links.loc[links["user_id"] == "cust07", "topic_id"])
    assert user_topics, "the user has training topics"
    assert {t.topic_id for t in e.user_topics} <= user_topics
    assert len(e.user_topics) == min(5, len(user_topics))
    for r in e.recommendations:
        item_topics = set(links.loc[links["item_id"] == r.item, "topic_id"])
        assert {t.topic_id for t in r.shared} == user_topics & item_topics, r
        for t in r.shared:
            own = links[(links["user_id"] == "cust07") & (links["topic_id"] == t.topic_id)]
            theirs = links[(links["item_id"] == r.item) & (links["topic_id"] == t.topic_id)]
            assert (t.user_sentences, t.item_sentences) == (own["sentences"].sum(),
                                                            theirs["sentences"].sum())
            assert t.words == train.topic_files.meta["topics"][t.topic_id]["words"]
    assert any(r.shared for r in e.recommendations)


def test_counts_agree_with_the_models_incidence(trained: tuple[Path, str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    root, checkpoint = trained
    monkeypatch.chdir(root)
    _, _, train, _, _ = load_model(checkpoint, "TinyShop")
    for side in ("user", "item"):
        counts = topic_sentence_counts(train, side)
        assert ((counts > 0).astype(np.float32) != train.topic_incidence(side)).nnz == 0


def test_top_10_is_the_models_ranking(trained: tuple[Path, str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Scored again item by item with ``predict`` (not full_sort_predict), history masked."""
    root, checkpoint = trained
    monkeypatch.chdir(root)
    e = explain(checkpoint, "cust07", "TinyShop")
    config, dataset, _, test_data, model = load_model(checkpoint, "TinyShop")
    uid = dataset.field2token_id["user_id"]["cust07"]
    case = test_data._dataset.inter_feat[test_data._dataset.inter_feat["user_id"] == uid]
    row = int(np.flatnonzero((test_data._dataset.inter_feat["user_id"] == uid).numpy())[-1])
    history = set(test_data.excluded[row].tolist())
    n_items = dataset.item_num
    batch = case[torch.zeros(n_items - 1, dtype=torch.long)]
    batch.update(type(batch)({"item_id": torch.arange(1, n_items)}))
    with torch.no_grad():
        scores = model.predict(batch).numpy()
    ranked = [i for i in (np.argsort(-scores, kind="stable") + 1) if i not in history][:10]
    tokens = dataset.field2id_token["item_id"]
    assert [r.item for r in e.recommendations] == [str(tokens[i]) for i in ranked]
    assert [r.score for r in e.recommendations] == pytest.approx(
        [float(scores[i - 1]) for i in ranked], abs=1e-5)
    assert not {r.item for r in e.recommendations} & {str(tokens[i]) for i in history}
    held = set(test_data.positives[row].tolist())
    assert [r.held_out for r in e.recommendations] == [i in held for i in ranked]
    assert e.history == [str(tokens[i]) for i in case["item_id_list"][-1].tolist() if i]


def test_command_prints_readable_topics(trained: tuple[Path, str],
                                        monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    root, checkpoint = trained
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "argv", sys.argv[:1])
    assert explain_module.main(["--dataset", "TinyShop", "--user", "cust07",
                                "--checkpoint", checkpoint]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("SD-MTMP top 10 for user cust07 on TinyShop")
    assert sum(line.lstrip().startswith(f"{n}.") for n in range(1, 11) for line in lines) == 10
    assert "shared topic #" in out
    assert any(word in out for word in ("strings", "cable", "tuner"))  # the themes' words
    assert explain_module.main(["--dataset", "TinyShop", "--user", "nobody",
                                "--checkpoint", checkpoint]) == 2
    assert "user 'nobody' is not in TinyShop" in capsys.readouterr().err


def test_format_marks_held_out_items() -> None:
    link = explain_module.TopicLink(3, ["strings", "tone"], 2, 5)
    e = explain_module.Explanation(
        "D", "u", "paper", ["a"], ["i2"], [link],
        [explain_module.Recommendation(1, "i1", 0.5, False, [link]),
         explain_module.Recommendation(2, "i2", 0.25, True, [], [link]),
         explain_module.Recommendation(3, "i3", 0.125, False)], "ck.pth")
    text = format_explanation(e)
    assert ' 1.  item i1  (score 0.500)\n      shared topic #3 "strings, tone": 2 of the ' \
           "user's sentences, 5 of the item's" in text
    assert " 2.* item i2  (score 0.250)\n      no topic shared with the user; the item's " \
           'reviews talk about #3 "strings, tone"' in text
    assert "3.  item i3  (score 0.125)\n      no topic shared; the item has no training review" \
           in text
