"""Top-k export from a checkpoint: one row per (user, rank) for every user, excluded items never
recommended, scores sorted, and the same lists as the model's own full_sort_predict; by default
after each user's whole record, with nothing of that record recommended."""

import pandas as pd
import pytest
import torch

from recbole_sdmtmp import recommend
from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.runner import load_trained, run
from tests.tiny_data import N_USERS, interactions, write_tiny_dataset

K = 5


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("recommend"))


@pytest.fixture(scope="module", params=["SDMTMP", "BPR", "SASRec"])
def checkpoint(request, tiny_root):
    """A plugin model, a RecBole general model and a RecBole sequential one."""
    settings = {"data_path": str(tiny_root), "epochs": 1, "show_progress": False, "embedding_size": 8,
                "hidden_size": 8, "eval_batch_size": 2, "checkpoint_dir": str(tiny_root / "saved"),
                "topic_fit": "prepared"}  # the hand-made side-files
    return run(build_config(request.param, "tiny", config_dict=settings)).checkpoint


def held_out_cases(checkpoint):
    """{user token: (its items that evaluation excludes, its test positives)}, from the loader."""
    config, dataset, (_, _, test_data), _ = load_trained(checkpoint)
    cases = {}
    for interaction, (history_u, history_i), positive_u, positive_i in test_data:
        for row, user in enumerate(interaction[dataset.uid_field].tolist()):
            token = dataset.field2id_token[dataset.uid_field][user]
            excluded = {dataset.field2id_token[dataset.iid_field][i] for i in history_i[history_u == row].tolist()}
            cases[token] = excluded
    return cases


def test_one_row_per_user_and_rank_nothing_excluded_scores_sorted(checkpoint, tmp_path):
    out = tmp_path / "recs.csv"
    assert recommend.main(["--checkpoint", checkpoint, "--top-k", str(K), "--out", str(out), "--case", "test"]) == 0
    table = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    assert list(table.columns) == list(recommend.COLUMNS)
    assert table["user_id"].nunique() == N_USERS  # every user of the dataset
    assert sorted(table.groupby("user_id")["rank"].apply(list).tolist()) == [list(range(1, K + 1))] * N_USERS
    assert not table.duplicated(["user_id", "item_id"]).any()
    cases = held_out_cases(checkpoint)
    for user, rows in table.groupby("user_id"):
        assert not set(rows["item_id"]) & cases[user], f"{user}: an excluded item was recommended"
        assert rows.sort_values("rank")["score"].is_monotonic_decreasing


def test_lists_are_the_models_own_full_sort_predict(checkpoint):
    """Recomputed here, per user, from the model's scores with the protocol's exclusions."""
    table = recommend.recommendations(checkpoint, K, case="test")
    config, dataset, (_, _, test_data), model = load_trained(checkpoint)
    tokens = dataset.field2id_token[dataset.iid_field]
    with torch.no_grad():
        for interaction, (history_u, history_i), _, _ in test_data:
            scores = model.full_sort_predict(interaction).view(len(interaction), -1)
            for row, user in enumerate(interaction[dataset.uid_field].tolist()):
                own = scores[row].clone()
                own[0] = -torch.inf
                own[history_i[history_u == row]] = -torch.inf
                best = torch.topk(own, K)
                rows = table[table["user_id"] == dataset.field2id_token[dataset.uid_field][user]].sort_values("rank")
                assert rows["item_id"].tolist() == [tokens[i] for i in best.indices.tolist()]
                assert rows["score"].tolist() == pytest.approx(best.values.tolist(), rel=1e-6)


def test_a_subset_of_users_and_parquet(checkpoint, tmp_path):
    out = tmp_path / "recs.parquet"
    assert recommend.main(["--checkpoint", checkpoint, "--top-k", "3", "--out", str(out), "--users", "u1", "u3"]) == 0
    table = pd.read_parquet(out)
    assert sorted(table["user_id"].unique()) == ["u1", "u3"] and len(table) == 6
    assert recommend.main(["--checkpoint", checkpoint, "--out", str(out), "--users", "nobody"]) == 2


def test_by_default_nothing_from_the_users_record_and_the_record_is_the_input(checkpoint):
    """The default case: every item the user ever interacted with (read here from the tiny
    atomic file's rows, not from RecBole) is excluded, and the input is the whole record: a
    sequential model's scores then differ from those of the test case, whose input stops before
    the test period; a general model's (BPR: the user id only) do not."""
    table = recommend.recommendations(checkpoint, K)
    record = {}
    for user, item, _, _ in interactions():
        record.setdefault(user, set()).add(item)
    assert sorted(table["user_id"].unique()) == sorted(record)
    for user, rows in table.groupby("user_id"):
        assert len(rows) == K
        assert not set(rows["item_id"]) & record[user], f"{user}: an item of its record was recommended"
        assert rows.sort_values("rank")["score"].is_monotonic_decreasing
    test_case = recommend.recommendations(checkpoint, K, case="test")
    merged = table.merge(test_case, on=["user_id", "item_id"], suffixes=("_record", "_test"))
    assert len(merged) > 0
    same = merged["score_record"].to_numpy() == pytest.approx(merged["score_test"].to_numpy(), rel=1e-6)
    assert same == ("BPR" in checkpoint)


def test_an_unknown_case_is_refused(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="case='next' is not valid"):
        recommend.recommendations(checkpoint, K, case="next")
