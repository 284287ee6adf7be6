"""Per-case negatives: a batch holds train_batch_size cases with [B, k] negatives, the
graph is propagated once per batch whatever k is, and the loss equals RecBole's repeated layout."""

import math

import numpy as np
import pytest
import torch
from recbole.data.dataloader import TrainDataLoader

from recbole_sdmtmp.data import SDMTMPDataset
from recbole_sdmtmp.data.negatives import CaseNegativesDataLoader
from recbole_sdmtmp.model.sdmtmp import SDMTMP
from recbole_sdmtmp.runner import load_data
from tests.tiny_data import tiny_config, write_tiny_dataset


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny"))


def negatives_config(root, k, batch, **extra):
    return tiny_config(root, train_batch_size=batch, dropout_type="none",
                       train_neg_sample_args={"distribution": "uniform", "sample_num": k}, **extra)


def training_items(train):
    """Every item each user has in the training cases (targets and histories)."""
    feat = train._dataset.inter_feat
    had = {}
    for user, item, history, length in zip(feat["user_id"].tolist(), feat["item_id"].tolist(),
                                           feat["item_id_list"].tolist(), feat["item_length"].tolist()):
        had.setdefault(user, set()).update([item, *history[:length]])
    return had


def test_a_batch_holds_cases_with_k_negatives_none_a_training_item(tiny_root):
    train = load_data(negatives_config(tiny_root, k=7, batch=10), SDMTMPDataset)[1][0]
    assert isinstance(train, CaseNegativesDataLoader)
    cases = len(train._dataset)
    assert len(train) == math.ceil(cases / 10)  # batches of cases, not of cases x k rows
    had = training_items(train)
    np.random.seed(0)
    seen = 0
    for batch in train:
        users, negatives = batch["user_id"], batch["neg_item_id"]
        assert negatives.shape == (len(users), 7) and len(users) <= 10
        assert len(torch.unique(batch["item_id_list"], dim=0)) == len(users)  # no case twice
        for user, row in zip(users.tolist(), negatives.tolist()):
            assert not set(row) & had[user] and 0 not in row
        seen += len(users)
    assert seen == cases


def test_one_negative_gives_recboles_own_batches(tiny_root):
    ours = load_data(negatives_config(tiny_root, k=1, batch=8), SDMTMPDataset)[1][0]
    theirs = load_data(negatives_config(tiny_root, k=1, batch=8), SDMTMPDataset, negatives_per_case=False)[1][0]
    assert type(theirs) is TrainDataLoader
    np.random.seed(3)
    ours_batch = next(iter(ours))
    np.random.seed(3)
    theirs_batch = next(iter(theirs))
    torch.testing.assert_close(ours_batch["neg_item_id"][:, 0], theirs_batch["neg_item_id"])
    torch.testing.assert_close(ours_batch["item_id"], theirs_batch["item_id"])


@pytest.mark.parametrize("extra", [{}, {"reg_type": "batch_embeddings"}, {"ablation": "w/o-S1"},
                                   {"graph_batch": "subgraph"}])
def test_loss_equals_recboles_repeated_layout(tiny_root, extra):
    """k = 4 negatives of 3 cases: RecBole repeats each case 4 times in a 12-row batch; ours has
    3 rows and a [3, 4] field. Same negatives, same loss terms."""
    config = negatives_config(tiny_root, k=4, batch=12, **extra)
    repeated = load_data(config, SDMTMPDataset, negatives_per_case=False)[1][0]
    np.random.seed(5)
    flat = next(iter(repeated))  # 3 cases x 4 rows, RecBole's layout: row r * 3 + i is case i
    assert len(flat) == 12
    torch.manual_seed(0)
    model = SDMTMP(config, repeated._dataset)
    model.train()
    per_case = flat[torch.arange(3)]
    per_case.update(type(flat)({"neg_item_id": flat["neg_item_id"].view(4, 3).T}))
    expected = model.calculate_loss(flat)
    for ours, theirs in zip(model.calculate_loss(per_case), expected):
        torch.testing.assert_close(ours, theirs)


def test_the_graph_is_propagated_once_per_batch_whatever_k(tiny_root):
    calls = {}
    for k in (1, 16):
        config = negatives_config(tiny_root, k=k, batch=6)
        train = load_data(config, SDMTMPDataset)[1][0]
        model = SDMTMP(config, train._dataset)
        model.train()
        count = [0]
        propagate = model.rating_aware

        def counted():
            count[0] += 1
            return propagate()

        model.rating_aware = counted
        for batch in train:
            sum(model.calculate_loss(batch)).backward()
        calls[k] = (count[0], len(train))
    assert calls[1] == calls[16] == (calls[1][1], calls[1][1])
    assert calls[1][1] == math.ceil(len(train._dataset) / 6)


def test_the_trainer_logs_each_loss_term(tiny_root):
    from recbole_sdmtmp.config import build_config
    from recbole_sdmtmp.runner import run

    config = dict(data_path=str(tiny_root), embedding_size=4, n_layers=1, epochs=2, show_progress=False,
                  checkpoint_dir=str(tiny_root / "saved"), train_batch_size=16,
                  train_neg_sample_args={"distribution": "uniform", "sample_num": 3}, topic_fit="prepared")
    result = run(build_config("SDMTMP", "tiny", config_dict=config), saved=False, evaluate_test=False)
    assert len(result.train_loss_terms) == 2 and all(len(terms) == 3 for terms in result.train_loss_terms)
    for total, terms in zip(result.train_losses, result.train_loss_terms):
        assert total == pytest.approx(sum(terms)) and terms[0] > 0 and terms[1] > 0 and terms[2] > 0


@pytest.mark.parametrize("k", [2, 9])  # 3 x 2 pairs < 10 items: rows gathered; 3 x 9 > 10: every item scored
def test_pair_scores_are_the_dot_products(k):
    torch.manual_seed(0)
    user, items = torch.randn(3, 4), torch.randn(10, 4)
    pos, neg = torch.tensor([1, 5, 9]), torch.randint(0, 10, (3, k))
    pos_score, neg_score = SDMTMP.pair_scores(user, items, pos, neg)
    assert pos_score.shape == (3, 1) and neg_score.shape == (3, k)
    for case in range(3):
        assert pos_score[case, 0].item() == pytest.approx(float(user[case] @ items[pos[case]]), abs=1e-5)
        for j in range(k):
            assert neg_score[case, j].item() == pytest.approx(float(user[case] @ items[neg[case, j]]), abs=1e-5)
