"""The two protocols of docs/DESIGN.md §4 on the hand-made dataset: split sizes by hand, what each
held-out case reads, what it must not recommend, negatives the user never had, and metrics with
several positives equal to RecBole's evaluator."""

import math

import numpy as np
import pytest
import torch
from recbole.data import data_preparation

from recbole_sdmtmp.data.protocol import TrainingItemSampler, split_counts
from recbole_sdmtmp.evaluation import case_metrics_of
from recbole_sdmtmp.config import build_config
from recbole_sdmtmp.runner import load_data, run
from tests.tiny_data import interactions, write_tiny_dataset


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def tiny(root, model="BPR", **extra):
    settings = {"data_path": str(root), "show_progress": False, "epochs": 1, "embedding_size": 8,
                "checkpoint_dir": str(root / "saved"), **extra}
    return build_config(model, "tiny", config_dict=settings)


def items_of(user_token):
    """The raw item tokens of a user in time order, from the hand-made rows."""
    return [item for (user, item, _, _) in sorted(interactions(), key=lambda r: r[3]) if user == user_token]


@pytest.mark.parametrize("total, expected", [(1, [1, 0, 0]), (2, [1, 0, 1]), (5, [3, 1, 1]),
                                             (9, [7, 1, 1]), (10, [7, 1, 2]), (20, [14, 2, 4])])
def test_split_counts_by_hand(total, expected):
    assert split_counts(total, [0.7, 0.1, 0.2]) == expected


def test_split_counts_follow_recbole(tiny_root):
    from recbole.data.dataset import SequentialDataset

    dataset = SequentialDataset(tiny(tiny_root))
    for total in range(1, 60):
        ids = dataset._calcu_split_ids(total, [0.7, 0.1, 0.2])
        counts = np.diff([0, *ids, total]).tolist()
        assert split_counts(total, [0.7, 0.1, 0.2]) == counts


def test_paper_protocol_one_case_per_user(tiny_root):
    config = tiny(tiny_root, model="SASRec", protocol="paper")  # a sequential model: its training cases
    dataset, (train, valid, test) = load_data(config)
    token = dataset.field2id_token["item_id"]
    users = dataset.field2id_token["user_id"]
    # 10 interactions per user: 7 training, 1 validation, 2 test (split_counts(10)).
    assert len(valid.positives) == len(test.positives) == 5
    assert len(train._dataset.inter_feat) == 5 * (7 - 1)  # targets at positions 1..6
    feat = test._dataset.inter_feat
    for row in range(5):
        user = users[feat["user_id"][row]]
        sequence = items_of(user)
        history = [token[i] for i in feat["item_id_list"][row][: feat["item_length"][row]]]
        assert history == sequence[:7]  # the input is the training history
        assert sorted(token[i] for i in test.positives[row]) == sorted(sequence[8:])
        assert sorted(token[i] for i in test.excluded[row]) == sorted(sequence[:8])  # train + valid
        assert sorted(token[i] for i in valid.positives[row]) == [sequence[7]]
        assert sorted(token[i] for i in valid.excluded[row]) == sorted(sequence[:7])
    # Training cases never reach a held-out item.
    train_targets = {(users[u], token[i]) for u, i in zip(train._dataset.inter_feat["user_id"].tolist(),
                                                          train._dataset.inter_feat["item_id"].tolist())}
    for user in users[1:]:
        assert {item for (u, item) in train_targets if u == user} == set(items_of(user)[1:7])
    # A general model learns from every training interaction, each user's first one included.
    _, (general, _, _) = load_data(tiny(tiny_root, protocol="paper"))
    feat = general._dataset.inter_feat
    rows = sorted(zip(feat["user_id"].tolist(), feat["item_id"].tolist()))
    assert rows == sorted((dataset.field2token_id["user_id"][user], dataset.field2token_id["item_id"][item])
                          for user in users[1:] for item in items_of(user)[:7])


def test_next_item_protocol_is_recboles_split_with_history_masked(tiny_root):
    config = tiny(tiny_root, model="SASRec", protocol="next_item")  # RecBole's sequential split
    _, (train, valid, test) = load_data(config)
    from recbole.data.dataset import SequentialDataset

    reference = data_preparation(config, SequentialDataset(config))
    for ours, theirs in zip((train, valid, test), reference):
        a, b = ours._dataset.inter_feat, theirs._dataset.inter_feat
        order_a = np.lexsort((a["timestamp"].numpy(), a["user_id"].numpy()))
        order_b = np.lexsort((b["timestamp"].numpy(), b["user_id"].numpy()))
        assert a["item_id"].numpy()[order_a].tolist() == b["item_id"].numpy()[order_b].tolist()
        assert a["user_id"].numpy()[order_a].tolist() == b["user_id"].numpy()[order_b].tolist()
    feat = test._dataset.inter_feat
    for row in range(len(feat)):
        history = feat["item_id_list"][row][: feat["item_length"][row]].tolist()
        assert test.positives[row].tolist() == [feat["item_id"][row].item()]
        assert sorted(test.excluded[row].tolist()) == sorted(history)


def test_bad_protocol_is_refused(tiny_root):
    with pytest.raises(ValueError, match="paper"):
        load_data(tiny(tiny_root, protocol="leave_one_out"))


def test_training_negatives_are_items_the_user_never_had(tiny_root):
    config = tiny(tiny_root, protocol="paper", train_batch_size=1000)
    _, (train, _, _) = load_data(config)
    feat = train._dataset.inter_feat
    had = {}
    for user, item, history, length in zip(feat["user_id"].tolist(), feat["item_id"].tolist(),
                                           feat["item_id_list"].tolist(), feat["item_length"].tolist()):
        had.setdefault(user, set()).update([item, *history[:length]])
    np.random.seed(0)
    for _ in range(20):
        batch = next(iter(train))
        for user, negative in zip(batch["user_id"].tolist(), batch["neg_item_id"].tolist()):
            assert negative not in had[user] and negative != 0


def test_sampler_layout_and_refusal():
    sampler = TrainingItemSampler(6, {1: [1, 2, 3], 2: [5]})
    np.random.seed(1)
    draws = sampler.sample_by_user_ids(np.array([1, 2]), np.array([1, 5]), 50).numpy()
    assert draws.shape == (100,)
    user_of = np.tile([1, 2], 50)  # RecBole's layout: draw r of user i at r * n_users + i
    assert set(draws[user_of == 1]) == {4, 5} and set(draws[user_of == 2]) == {1, 2, 3, 4}
    with pytest.raises(ValueError, match="every item"):
        TrainingItemSampler(4, {1: [1, 2, 3]})


class _ScoresTrainer:
    """A stand-in trainer whose scores are fixed, to check the per-case metrics by hand."""

    class _Model:
        def eval(self):
            pass

    def __init__(self, batches):
        self.model, self.batches = self._Model(), batches

    def _full_sort_batch_eval(self, batch):
        return batch


def test_case_metrics_by_hand_with_several_positives():
    scores = torch.tensor([[-np.inf, 9.0, 8.0, 7.0, 6.0, 5.0],   # positives 1 and 4: ranks 1 and 4
                           [-np.inf, 1.0, 2.0, 3.0, 4.0, 5.0]])  # positive 1: rank 5
    batch = (None, scores, torch.tensor([0, 0, 1]), torch.tensor([1, 4, 1]))
    metrics = case_metrics_of(_ScoresTrainer([batch]), [batch], topk=(2, 5))
    assert metrics["hit@2"].tolist() == [1.0, 0.0]
    assert metrics["hit@5"].tolist() == [1.0, 1.0]
    idcg2 = 1 + 1 / math.log2(3)
    assert metrics["ndcg@5"][0] == pytest.approx((1 + 1 / math.log2(5)) / idcg2)
    assert metrics["ndcg@2"][0] == pytest.approx(1 / idcg2)
    assert metrics["ndcg@5"][1] == pytest.approx(1 / math.log2(6))


@pytest.mark.parametrize("protocol", ["paper", "next_item"])
def test_per_case_metrics_equal_recboles_evaluator(tiny_root, tmp_path, protocol):
    result = run(build_config("BPR", "tiny", config_dict={"data_path": str(tiny_root), "protocol": protocol,
                                             "checkpoint_dir": str(tmp_path), "epochs": 2,
                                             "embedding_size": 8, "eval_batch_size": 3,
                                             "show_progress": False}))
    n_cases = 5 if protocol == "paper" else len(result.test_case_metrics["hit@10"])
    assert result.test_cases == n_cases == len(result.test_case_metrics["ndcg@20"])
    for metric, values in result.test_case_metrics.items():
        assert result.test_result[metric] == pytest.approx(np.mean(values), abs=1e-4)


def test_paper_protocol_hit_rate_by_hand_for_a_general_model(tiny_root, tmp_path):
    """BPR scored by user id: rank its own scores by hand, masking training and validation
    items; HR@10 is the share of users with a test item in their top 10."""
    settings = {"data_path": str(tiny_root), "protocol": "paper", "checkpoint_dir": str(tmp_path),
                "epochs": 2, "embedding_size": 8, "show_progress": False}
    result = run(build_config("BPR", "tiny", config_dict=settings))
    config = build_config("BPR", "tiny", config_dict=settings)
    _, (train, _, test) = load_data(config)
    from recbole.model.general_recommender import BPR

    model = BPR(config, train._dataset)
    model.load_state_dict(torch.load(result.checkpoint, weights_only=False)["state_dict"])
    model.eval()
    feat = test._dataset.inter_feat
    with torch.no_grad():
        scores = model.full_sort_predict(feat).view(len(feat), -1)
    hits = []
    for row in range(len(feat)):
        row_scores = scores[row].clone()
        row_scores[0] = -np.inf
        row_scores[test.excluded[row]] = -np.inf
        top10 = torch.topk(row_scores, 10).indices.tolist()
        hits.append(any(item in top10 for item in test.positives[row].tolist()))
    assert result.test_result["hit@10"] == pytest.approx(np.mean(hits), abs=1e-4)


def test_history_length_fitted_to_the_longest_input(tiny_root):
    """RecBole pads to MAX_ITEM_LIST_LENGTH; the protocol cuts it to the longest history a case
    reads (paper: a user's training part, 7 of 10 here; next_item: 9), changing no input."""
    from recbole_sdmtmp.data.protocol import longest_input

    assert longest_input([10, 5, 3], "paper", [0.7, 0.1, 0.2]) == 7
    assert longest_input([10, 5, 3], "next_item", [0.7, 0.1, 0.2]) == 9
    histories = {}
    for length in (50, 8):
        config = tiny(tiny_root, protocol="paper", MAX_ITEM_LIST_LENGTH=length)
        _, (_, _, test) = load_data(config)
        assert config["MAX_ITEM_LIST_LENGTH"] == 7
        feat = test._dataset.inter_feat
        assert feat["item_id_list"].shape[1] == 7
        histories[length] = [row[:n].tolist() for row, n in zip(feat["item_id_list"], feat["item_length"])]
    assert histories[50] == histories[8]
    config = tiny(tiny_root, protocol="paper", MAX_ITEM_LIST_LENGTH=4)  # a user's own cap still holds
    load_data(config)
    assert config["MAX_ITEM_LIST_LENGTH"] == 4


def test_target_only_exclusion_can_return_other_history_items():
    """The first version's rule (RecBole's sequential sampler): only the target is excluded."""
    sampler = TrainingItemSampler(4, {1: [1, 2]}, exclude="target")
    np.random.seed(2)
    draws = sampler.sample_by_user_ids(np.array([1]), np.array([1]), 200).numpy()
    assert set(draws) == {2, 3}  # item 2 is the user's own training item, drawn as a negative
    with pytest.raises(ValueError, match="interacted"):
        TrainingItemSampler(4, {1: [1]}, exclude="none")


# global_time on the hand-made data plus a late user u5 (i0 on day 125, i1 on day 130). The 52
# days' 80th and 90th percentiles (numpy's linear rule) are 125.0 and 127.9, so per user (days
# 100 + 3j + u, j < 10): training before 125, validation in [125, 127.9), test from 127.9 on.
LATE_USER = [("u5", "i0", 3.0, 125.0), ("u5", "i1", 4.0, 130.0)]
GLOBAL_TIME = {  # user: (training items j, validation items j, test items j) by hand
    "u0": (range(0, 9), [9], []),  # days 100..124 | 127 | -
    "u1": (range(0, 8), [8], [9]),  # 101..122 | 125 | 128
    "u2": (range(0, 8), [8], [9]),  # 102..123 | 126 | 129
    "u3": (range(0, 8), [8], [9]),  # 103..124 | 127 | 130
    "u4": (range(0, 7), [7], [8, 9]),  # 104..122 | 125 | 128, 131
}


@pytest.fixture(scope="module")
def late_root(tmp_path_factory):
    root = write_tiny_dataset(tmp_path_factory.mktemp("late"))
    with open(root / "tiny" / "tiny.inter", "a") as inter:
        inter.writelines(f"{u}\t{i}\t{r}\t{d}\n" for (u, i, r, d) in LATE_USER)
    return root


def test_global_time_cuts_by_hand(late_root):
    from recbole.data.dataset import SequentialDataset

    from recbole_sdmtmp.data.protocol import global_cut_times, user_sequences

    dataset = SequentialDataset(tiny(late_root, model="SASRec"))
    dataset._change_feat_format()
    assert global_cut_times(user_sequences(dataset), [0.8, 0.9]) == pytest.approx((125.0, 127.9))
    for bad in ([0.9, 0.8], [0.8], [0.0, 0.5], [0.5, 1.0]):
        with pytest.raises(ValueError, match="global_time_cuts"):
            global_cut_times(user_sequences(dataset), bad)


def test_global_time_protocol_by_hand(late_root):
    config = tiny(late_root, model="SASRec", protocol="global_time")
    dataset, (train, valid, test) = load_data(config)
    token, users = dataset.field2id_token["item_id"], dataset.field2id_token["user_id"]

    def by_user(loader):
        feat = loader._dataset.inter_feat
        return {users[feat["user_id"][row]]: (
            [token[i] for i in feat["item_id_list"][row][: feat["item_length"][row]]],
            sorted(token[i] for i in loader.positives[row]), sorted(token[i] for i in loader.excluded[row]))
            for row in range(len(feat))}

    valid_cases, test_cases = by_user(valid), by_user(test)
    assert sorted(valid_cases) == ["u0", "u1", "u2", "u3", "u4"]  # u5: nothing before the first cut
    assert sorted(test_cases) == ["u1", "u2", "u3", "u4", "u5"]  # u0: nothing after the second cut
    for user, (training, validation, testing) in GLOBAL_TIME.items():
        sequence = items_of(user)
        assert valid_cases[user] == (sequence[:len(training)], sorted(sequence[j] for j in validation),
                                     sorted(sequence[:len(training)]))
        if testing:
            history = sequence[:len(training) + len(validation)]  # the validation period is input here
            assert test_cases[user] == (history, sorted(sequence[j] for j in testing), sorted(history))
    assert test_cases["u5"] == (["i0"], ["i1"], ["i0"])  # its day-125 interaction is history, not training
    # Training: 35 sequential cases (targets j = 1..n-1), and for a general model 40 interactions,
    # none of them u5's: nothing dated at or after the first cut.
    assert len(train._dataset.inter_feat) == sum(len(t) - 1 for t, _, _ in GLOBAL_TIME.values()) == 35
    _, (general, _, _) = load_data(tiny(late_root, protocol="global_time"))
    feat = general._dataset.inter_feat
    pairs = sorted((users[u], token[i]) for u, i in zip(feat["user_id"].tolist(), feat["item_id"].tolist()))
    assert pairs == sorted((user, items_of(user)[j]) for user, (t, _, _) in GLOBAL_TIME.items() for j in t)
    assert len(pairs) == 40


@pytest.mark.parametrize("training_cases", ["sequential", "per_user"])
def test_sd_mtmp_under_global_time_reads_no_review_after_the_first_cut(late_root, training_cases, monkeypatch):
    """u0's topic-2 review is of its day-127 interaction, after the first cut: the training split's
    topic fit and topic links leave it out, as they leave out u0's test-period review under ``paper``."""
    from recbole_sdmtmp.data import SDMTMPDataset
    from tests.tiny_data import hand_made_training_fits

    hand_made_training_fits(monkeypatch)
    config = tiny(late_root, model="SDMTMP", protocol="global_time", training_cases=training_cases,
                  n_layers=1, train_batch_size=16)
    dataset, (train, _, _) = load_data(config, SDMTMPDataset)
    incidence = train._dataset.topic_incidence("user")
    u0 = dataset.field2token_id["user_id"]["u0"]
    assert incidence[u0].indices.tolist() == [0, 1]
    fitted_on = {tuple(entry.split("\t")) for entry in train._dataset.topic_files.meta["fitted_on"]}
    days = {(u, i): d for (u, i, _, d) in interactions() + LATE_USER}
    assert fitted_on and max(days[pair] for pair in fitted_on) < 125.0  # the first cut
    assert train._dataset.topic_fit_folder().name.startswith("global_time-")
    result = run(config)
    assert result.test_cases == 5 and all(0.0 <= value <= 1.0 for value in result.test_result.values())


@pytest.mark.parametrize("protocol", ["paper", "next_item", "global_time"])
def test_topic_links_from_every_review_are_refused_unless_named_a_leak(late_root, protocol):
    from recbole_sdmtmp.data import SDMTMPDataset

    with pytest.raises(ValueError, match="topic_reviews=leaky_all .* allow_test_leak=True"):
        load_data(tiny(late_root, model="SDMTMP", protocol=protocol, topic_reviews="leaky_all"), SDMTMPDataset)
    load_data(tiny(late_root, model="SDMTMP", protocol=protocol, topic_reviews="leaky_all", allow_test_leak=True),
              SDMTMPDataset)
    load_data(tiny(late_root, model="SDMTMP", protocol="paper_as_printed", topic_reviews="leaky_all"), SDMTMPDataset)
