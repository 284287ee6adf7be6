"""The reference numbers the tables rely on, checked outside RecBole: the training split and the
popularity floor recomputed with numpy from the real Instrument atomic file (issue 18)."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch

from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.runner import load_data, run


def independent_split(inter_file):
    """Per user, by time (file order on a tie): the newest 20% test, the 10% before validation
    (at least one), the rest training; RecBole's RS rule for users of 5 or more interactions."""
    frame = pd.read_csv(inter_file, sep="\t")
    frame.columns = [column.split(":")[0] for column in frame.columns]
    frame["order"] = np.arange(len(frame))
    frame = frame.sort_values(["user_id", "timestamp", "order"], kind="stable")
    split = {}
    for user, rows in frame.groupby("user_id", sort=False):
        items = rows["item_id"].astype(str).tolist()
        n = len(items)
        n_test, n_valid = int(0.2 * n), max(int(0.1 * n), 1)
        n_train = n - n_test - n_valid
        split[str(user)] = (items[:n_train], items[n_train:n_train + n_valid], items[n_train + n_valid:])
    return split


@pytest.fixture(scope="module")
def instrument(instrument_root):
    inter = instrument_root / "Instrument" / "Instrument.inter"
    return instrument_root, independent_split(inter)


def config_for(root, model, **extra):
    return build_config(model, "Instrument", config_dict={"data_path": str(root), "show_progress": False,
                                                           "checkpoint_dir": str(root / "saved"), **extra})


def pairs(dataset, rows=None):
    feat = dataset.inter_feat
    users = dataset.field2id_token["user_id"][feat["user_id"].numpy()]
    items = dataset.field2id_token["item_id"][feat["item_id"].numpy()]
    return Counter(zip(users.tolist(), items.tolist()))


def test_general_models_learn_from_every_training_interaction(instrument):
    root, split = instrument
    expected = Counter((user, item) for user, (train, _, _) in split.items() for item in train)
    assert sum(expected.values()) == 7067
    _, (general, _, _) = load_data(config_for(root, "BPR"))
    assert pairs(general._dataset) == expected  # each user's first interaction included
    assert (general._dataset.inter_feat["item_length"] == 0).all()  # a general model reads no history
    _, (sequential, _, _) = load_data(config_for(root, "SASRec"))
    firsts = Counter((user, train[0]) for user, (train, _, _) in split.items())
    assert pairs(sequential._dataset) == expected - firsts  # a case's target needs a history: 5,638
    for loader in (general, sequential):  # both see the same graph
        matrix = loader._dataset.inter_matrix(form="coo")
        assert matrix.nnz == 7067 and matrix.data.max() == 1


def test_pop_is_the_training_count_and_its_hit_rate_an_independent_one(instrument):
    """Pop's scores equal numpy.bincount of the training split; its test HR@10 lies between the
    pessimistic and optimistic HR@10 of ranking by those counts (ties decide within)."""
    root, split = instrument
    result = run(build_config("Pop", "Instrument", config_dict={"data_path": str(root), "show_progress": False,
                                                   "checkpoint_dir": str(root / "saved")}))
    counts = Counter(item for train, _, _ in split.values() for item in train)
    state = torch.load(result.checkpoint, weights_only=False)
    item_cnt = state["other_parameter"]["item_cnt"].squeeze(1).numpy()
    _, (train, _, _) = load_data(config_for(root, "Pop"))
    tokens = train._dataset.field2id_token["item_id"]
    assert {tokens[i]: int(item_cnt[i]) for i in range(1, len(tokens))} == {t: counts.get(t, 0) for t in tokens[1:]}

    catalogue = np.array(tokens[1:])
    score = np.array([counts.get(t, 0) for t in catalogue])
    optimistic = pessimistic = 0
    for train_items, valid_items, test_items in split.values():
        keep = ~np.isin(catalogue, train_items + valid_items)  # the test masks training and validation items
        s, positive = score[keep], np.isin(catalogue[keep], test_items)
        tenth = np.sort(s)[::-1][9]
        above, tied = s > tenth, s == tenth
        free = 10 - above.sum()
        hit_above = (positive & above).any()
        optimistic += hit_above or (positive & tied).any()
        pessimistic += hit_above or (tied.sum() - (positive & tied).sum() < free)
    low, high = pessimistic / len(split), optimistic / len(split)
    assert 0.085 <= low <= high <= 0.100  # Instrument: 0.0889 .. 0.0910
    assert low - 1e-4 <= result.test_result["hit@10"] <= high + 1e-4
