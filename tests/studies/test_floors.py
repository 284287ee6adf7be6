"""The reference numbers the tables rely on, checked outside RecBole: the training split and the
popularity floor recomputed with pandas and numpy from the real atomic files."""

from collections import Counter

import pytest
import torch

from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.runner import load_data, run
from studies.floors import global_time_split, paper_split, popularity_hit_bounds, training_counts
from tests.conftest import SHARED_DIR

RAW = {"Gift_Cards": "Gift_Cards_5.json.gz", "Magazine_Subscriptions": "Magazine_Subscriptions_5.json.gz"}
# HR@10 of a correct Pop (plain counts, ties deciding within the range)
EXPECTED_HR10 = {"Instrument": (0.085, 0.100), "Gift_Cards": (0.12, 0.14), "Magazine_Subscriptions": (0.12, 0.17)}


@pytest.fixture(scope="module")
def roots(instrument_root, tmp_path_factory):
    """Instrument from the shared fixture; the two real 2018 files converted here (no topics)."""
    from dataset_preprocess.pipeline import prepare_dataset

    folder = tmp_path_factory.mktemp("floors")
    for name, raw in RAW.items():
        prepare_dataset(name, out_dir=folder, raw_file=SHARED_DIR / "data" / "amazon" / raw, download=False, topics=False)
    return {"Instrument": instrument_root, **{name: folder for name in RAW}}


def config_for(root, model, dataset, protocol="paper"):
    return build_config(model, dataset, config_dict={"data_path": str(root), "show_progress": False,
                                                     "checkpoint_dir": str(root / "saved"), "protocol": protocol})


def pairs(dataset) -> Counter:
    feat = dataset.inter_feat
    users = dataset.field2id_token["user_id"][feat["user_id"].numpy()]
    items = dataset.field2id_token["item_id"][feat["item_id"].numpy()]
    return Counter(zip(users.tolist(), items.tolist()))


def test_split_rounding_by_hand(tmp_path):
    """RecBole's RS rule: 5 -> 3/1/1, 10 -> 7/1/2; file order breaks a tie in time."""
    rows = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    rows += [f"a\ti{j}\t5\t{100 + j}" for j in range(5)] + [f"b\ti{j}\t5\t{200 - (j // 2)}" for j in range(10)]
    path = tmp_path / "x.inter"
    path.write_text("\n".join(rows) + "\n")
    split = paper_split(path)
    assert (split["a"].train, split["a"].valid, split["a"].test) == (["i0", "i1", "i2"], ["i3"], ["i4"])
    # b's times fall 200, 200, 199, 199, ..., 196: oldest first, file order within a day
    assert split["b"].train == ["i8", "i9", "i6", "i7", "i4", "i5", "i2"] and split["b"].test == ["i0", "i1"]
    assert training_counts(split)["i2"] == 2


def test_general_models_learn_from_every_training_interaction(roots):
    root = roots["Instrument"]
    split = paper_split(root / "Instrument" / "Instrument.inter")
    expected = Counter((user, item) for user, parts in split.items() for item in parts.train)
    assert sum(expected.values()) == 7067
    _, (general, _, _) = load_data(config_for(root, "BPR", "Instrument"))
    assert pairs(general._dataset) == expected  # each user's first interaction included
    assert (general._dataset.inter_feat["item_length"] == 0).all()  # a general model reads no history
    _, (sequential, _, _) = load_data(config_for(root, "SASRec", "Instrument"))
    firsts = Counter((user, parts.train[0]) for user, parts in split.items())
    assert pairs(sequential._dataset) == expected - firsts  # a case's target needs a history: 5,638
    for loader in (general, sequential):  # both see the same graph
        matrix = loader._dataset.inter_matrix(form="coo")
        assert matrix.nnz == 7067 and matrix.data.max() == 1


@pytest.mark.parametrize("dataset", ["Instrument", "Gift_Cards", "Magazine_Subscriptions"])
def test_pop_is_the_training_count_and_its_hit_rate_an_independent_one(roots, dataset):
    """Pop's scores equal the training counts of the independent split; its test HR@10 lies
    between the pessimistic and optimistic HR@10 of ranking by those counts."""
    root = roots[dataset]
    split = paper_split(root / dataset / f"{dataset}.inter")
    result = run(config_for(root, "Pop", dataset))
    counts = training_counts(split)
    item_cnt = torch.load(result.checkpoint, weights_only=False)["other_parameter"]["item_cnt"].squeeze(1).numpy()
    _, (train, _, _) = load_data(config_for(root, "Pop", dataset))
    tokens = train._dataset.field2id_token["item_id"]
    assert {tokens[i]: int(item_cnt[i]) for i in range(1, len(tokens))} == {t: counts.get(t, 0) for t in tokens[1:]}
    low, high = popularity_hit_bounds(split, k=10)
    assert EXPECTED_HR10[dataset][0] <= low <= high <= EXPECTED_HR10[dataset][1]
    assert low - 1e-4 <= result.test_result["hit@10"] <= high + 1e-4


def test_global_time_split_and_its_cases_by_hand(tmp_path):
    """Times 1..10: the cuts are the 80th and 90th percentiles, 8.2 and 9.1. a (times 1-5) has
    nothing after the first cut: no case. b: training b0-b2, validation b3 (9), test b4 (10)."""
    rows = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    rows += [f"a\ta{j}\t5\t{1 + j}" for j in range(5)] + [f"b\tb{j}\t5\t{6 + j}" for j in range(5)]
    path = tmp_path / "x.inter"
    path.write_text("\n".join(rows) + "\n")
    split = global_time_split(path)
    assert (split["a"].train, split["a"].valid, split["a"].test) == ([f"a{j}" for j in range(5)], [], [])
    assert (split["b"].train, split["b"].valid, split["b"].test) == (["b0", "b1", "b2"], ["b3"], ["b4"])
    # b's candidates: a0-a4 (count 1 each) and b4 (0); b4 is 6th, one case
    assert popularity_hit_bounds(split, k=5) == (0.0, 0.0) and popularity_hit_bounds(split, k=6) == (1.0, 1.0)


@pytest.mark.parametrize("dataset", ["Instrument", "Gift_Cards", "Magazine_Subscriptions"])
def test_pop_under_global_time_lies_in_the_independent_range(roots, dataset):
    """The global cuts recomputed with numpy on the atomic file: the runner's Pop under
    ``global_time`` scores the counts before the first cut, and its test HR@10 lies in the
    range of ranking by them over the same cases."""
    root = roots[dataset]
    split = global_time_split(root / dataset / f"{dataset}.inter")
    result = run(config_for(root, "Pop", dataset, "global_time"))
    counts = training_counts(split)
    item_cnt = torch.load(result.checkpoint, weights_only=False)["other_parameter"]["item_cnt"].squeeze(1).numpy()
    _, (train, _, test) = load_data(config_for(root, "Pop", dataset, "global_time"))
    tokens = train._dataset.field2id_token["item_id"]
    assert {tokens[i]: int(item_cnt[i]) for i in range(1, len(tokens))} == {t: counts.get(t, 0) for t in tokens[1:]}
    cases = [user for user in split.values() if user.test and (user.train or user.valid)]
    assert len(test._dataset) == len(cases)  # one test case per user with a history and a future
    low, high = popularity_hit_bounds(split, k=10)
    assert low - 1e-4 <= result.test_result["hit@10"] <= high + 1e-4
